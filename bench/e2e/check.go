package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// outputCheck is what was found in the file sink's output.
type outputCheck struct {
	Records     int64 // lines
	BadLines    int64 // not a JSON object with a string "message"
	BadMessages int64 // message is not one JSON value although the generator wrote JSON
	FirstError  string
}

// checkOutput reads out.jsonl: one envelope per line, each a JSON object whose "message" is a
// string and, when wantJSON, itself a complete JSON document (catches mis-joined partials).
func checkOutput(path string, wantJSON bool) (outputCheck, error) {
	var c outputCheck
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("output: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var env struct {
		Message *string `json:"message"`
	}
	for sc.Scan() {
		c.Records++
		env.Message = nil
		if err := json.Unmarshal(sc.Bytes(), &env); err != nil || env.Message == nil {
			c.BadLines++
			if c.FirstError == "" {
				c.FirstError = fmt.Sprintf("line %d: not an envelope with a message (%v): %.120q", c.Records, err, sc.Bytes())
			}
			continue
		}
		if wantJSON && !json.Valid([]byte(*env.Message)) {
			c.BadMessages++
			if c.FirstError == "" {
				c.FirstError = fmt.Sprintf("line %d: message is not complete JSON: %.120q", c.Records, *env.Message)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("output %s: line %d: %w", path, c.Records+1, err)
	}
	return c, nil
}
