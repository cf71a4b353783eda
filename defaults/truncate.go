package defaults

import "unicode/utf8"

// Truncate bounds a message that this project writes into an object (a record's reason,
// an Event's note, an admission warning) to n bytes and marks the cut with "...". It cuts
// at a character boundary, so the result stays valid UTF-8.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
