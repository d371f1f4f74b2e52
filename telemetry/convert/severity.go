package convert

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
)

// levelSeverity maps a level name to its severity: the names of the managed runtimes'
// loggers, slog's offsets ("INFO+2" counts as INFO), and .NET's four-letter short forms.
// strict refuses lower-case names, for words at the start of a free-form line where "info"
// or "error" may well be prose.
func levelSeverity(level string, strict bool) (plog.SeverityNumber, bool) {
	if i := strings.IndexAny(level, "+-"); i > 0 {
		level = level[:i]
	}
	up := strings.ToUpper(level)
	if strict && up != level {
		return 0, false
	}
	switch up {
	case "TRACE", "TRCE":
		return plog.SeverityNumberTrace, true
	case "DEBUG", "DBUG":
		return plog.SeverityNumberDebug, true
	case "INFO", "INFORMATION":
		return plog.SeverityNumberInfo, true
	case "NOTICE":
		return plog.SeverityNumberInfo2, true
	case "WARN", "WARNING":
		return plog.SeverityNumberWarn, true
	case "ERROR", "ERR", "FAIL":
		return plog.SeverityNumberError, true
	case "FATAL", "CRITICAL", "CRIT", "PANIC", "EMERG", "ALERT":
		return plog.SeverityNumberFatal, true
	}
	return 0, false
}

// numericSeverity maps the numeric levels of pino and bunyan (10 trace … 60 fatal).
func numericSeverity(n int64) (plog.SeverityNumber, string, bool) {
	switch n {
	case 10:
		return plog.SeverityNumberTrace, "TRACE", true
	case 20:
		return plog.SeverityNumberDebug, "DEBUG", true
	case 30:
		return plog.SeverityNumberInfo, "INFO", true
	case 40:
		return plog.SeverityNumberWarn, "WARN", true
	case 50:
		return plog.SeverityNumberError, "ERROR", true
	case 60:
		return plog.SeverityNumberFatal, "FATAL", true
	}
	return 0, "", false
}

// linePrefix is what the prefix of a text log line says.
type linePrefix struct {
	level     string
	severity  plog.SeverityNumber
	requestID string
}

// parseTextLine reads the level and request id from the prefixes the managed runtimes
// write in the Text log format:
//
//	[INFO]	2023-08-31T22:12:58.534Z	1c8df7d3-xmpl-46da-9778-518e6eca8125	msg   (Python)
//	2024-10-27T19:17:45.586Z	79b4f56e-95b1-4643-9700-2807f4e68189	INFO	msg   (Node.js)
//	2024-10-27 19:17:45 79b4f56e-95b1-4643-9700-2807f4e68189 INFO  Handler - msg   (Java log4j2)
//	2024-10-27T19:17:45.586Z	79b4f56e-95b1-4643-9700-2807f4e68189	info	msg   (.NET)
//	time=2024-10-27T19:17:45.586Z level=WARN msg=...   (Go log/slog text handler)
//	2024/10/27 19:17:45 {"errorMessage":"...","errorType":"..."}   (aws-lambda-go, a failed invocation: ERROR)
//	ERROR: msg, WARN msg   (plain words)
//
// A line in none of these shapes gets no level, rather than a guess.
func parseTextLine(s string) linePrefix {
	var tl linePrefix
	tok, rest := nextToken(s)
	if len(tok) > 2 && tok[0] == '[' && tok[len(tok)-1] == ']' {
		if sev, ok := levelSeverity(tok[1:len(tok)-1], false); ok {
			tl.level, tl.severity = tok[1:len(tok)-1], sev
			tok, rest = nextToken(rest)
			if looksLikeTime(tok) {
				tok, _ = nextToken(rest)
			}
			if looksLikeRequestID(tok) {
				tl.requestID = tok
			}
		}
		return tl
	}
	if strings.HasPrefix(tok, "time=") || strings.HasPrefix(tok, "level=") {
		for range 3 {
			if v, ok := strings.CutPrefix(tok, "level="); ok {
				if sev, ok := levelSeverity(v, false); ok {
					tl.level, tl.severity = v, sev
				}
				return tl
			}
			tok, rest = nextToken(rest)
		}
		return tl
	}
	prefixed := false
	for range 2 {
		if !looksLikeTime(tok) {
			break
		}
		prefixed = true
		tok, rest = nextToken(rest)
	}
	if looksLikeRequestID(tok) {
		tl.requestID, prefixed = tok, true
		tok, _ = nextToken(rest)
	}
	if prefixed && strings.HasPrefix(tok, `{"errorMessage":`) {
		// aws-lambda-go logs a failed invocation's error document after a log package
		// time; it carries no level word, but it is the invocation's error.
		tl.level, tl.severity = "ERROR", plog.SeverityNumberError
		return tl
	}
	word := strings.TrimSuffix(tok, ":")
	if sev, ok := levelSeverity(word, !prefixed); ok {
		tl.level, tl.severity = word, sev
	}
	return tl
}

// nextToken splits off the first run of non-blank bytes of s.
func nextToken(s string) (tok, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t\r\n")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// looksLikeTime matches the date or time tokens of the runtimes' prefixes:
// 2024-10-27T19:17:45.586Z, 2024-10-27, 2024/10/27, 19:17:45.
func looksLikeTime(t string) bool {
	switch {
	case len(t) >= 10 && digits(t[:4]) && (t[4] == '-' || t[4] == '/') && digits(t[5:7]) && digits(t[8:10]):
		return true
	case len(t) >= 8 && digits(t[:2]) && t[2] == ':' && digits(t[3:5]) && t[5] == ':':
		return true
	}
	return false
}

// looksLikeRequestID matches a Lambda request id, a UUID; the guide's examples put
// letters such as "xmpl" in it, so any alphanumerics are allowed between the dashes.
func looksLikeRequestID(t string) bool {
	if len(t) != 36 {
		return false
	}
	for i := range len(t) {
		c := t[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
