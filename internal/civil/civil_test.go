package civil

import (
	"testing"
	"time"
)

// Every day from year -1000 to 10000 against the time package, both ways.
func TestAgainstTimePackage(t *testing.T) {
	start := time.Date(-1000, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(10000, 12, 31, 0, 0, 0, 0, time.UTC)
	for day := start; !day.After(end); day = day.AddDate(0, 0, 1) {
		days := day.Unix() / 86400
		y, m, d := day.Date()
		if got := DaysFromCivil(int64(y), int64(m), int64(d)); got != days {
			t.Fatalf("DaysFromCivil(%d, %d, %d) = %d, want %d", y, m, d, got, days)
		}
		if gy, gm, gd := FromDays(days); gy != y || gm != int(m) || gd != d {
			t.Fatalf("FromDays(%d) = %d-%d-%d, want %d-%d-%d", days, gy, gm, gd, y, m, d)
		}
		if d == 1 {
			last := day.AddDate(0, 1, -1).Day()
			if got := DaysIn(int64(m), int64(y)); got != int64(last) {
				t.Fatalf("DaysIn(%d, %d) = %d, want %d", m, y, got, last)
			}
		}
	}
}
