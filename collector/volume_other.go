//go:build !linux

package collector

func volumeSize(string) (int64, bool) { return 0, false }
func accessible(string, bool) error   { return nil }
