package multiline

import "bytes"

// The built-in detectors follow the exception formats the Cloud Logging agent's exception
// detector (fluent-plugin-detect-exceptions) and Fluent Bit's built-in multiline parsers
// recognise, written as byte and prefix tests instead of regular expressions, with a few
// formats they miss (Python 3.11 caret lines, Go generic frames and fatal errors, plain Ruby
// backtraces, .NET inner exceptions). One machine serves every enabled language: each
// language's states are distinct, so a trace is owned by the language that started it.

// lang is a set of built-in languages.
type lang uint8

const (
	langJava lang = 1 << iota // also Node and .NET: "Error: msg" then "    at frame" lines
	langPython
	langGo
	langRuby
	langPHP
	langDart
)

// Names accepted in multiline.detect.
var langNames = map[string]lang{
	"java": langJava, "node": langJava, "nodejs": langJava, "js": langJava, "javascript": langJava,
	"dotnet": langJava, "csharp": langJava,
	"python": langPython, "go": langGo, "ruby": langRuby, "php": langPHP, "dart": langDart,
	"all": langJava | langPython | langGo | langRuby | langPHP | langDart,
}

// Built-in machine states; 0 is idle.
const (
	_ uint8 = iota
	javaAfterException
	javaNested // after "nested exception is:": an exception line must follow
	javaFrames
	pyTrace
	pyCode
	goAfterPanic
	goAfterSignal
	goGoroutine
	goFrame
	goFrameFile
	rubyBefore
	rubyTrace
	phpBegin
	phpFrames
	dartException
	dartMessage
	dartMessage2
	dartStack
	// Added later (a state number must stay below 64, see tentativeStates): the numbers above are saved with tail positions and must not move.
	pyAfterException // after a traceback's exception line: a chained one may follow
	pyBlank          // tentative: the blank line after an exception line
	pyChain          // after "During handling of the above exception, ...:"
	pyChainBlank     // after the blank line that follows pyChain's line
	pyGroup          // in a Python 3.11 exception group ("  | ", "  +-+----")
	javaBlank        // tentative: a blank line after frames, before Node's "Node.js v20.11.0"
	javaExcBlank     // tentative: a blank line after an exception line, before its frames
	nodeLocation     // tentative: "/app/server.js:12", how Node begins an uncaught exception
	nodeSource       // tentative: the source line after nodeLocation
	nodeCaret        // tentative: the "    ^" line under it
	nodeBlank        // tentative: the blank line before the exception line
	builtinStates
)

// tentativeStates: a line that leads to one of them may not belong to the trace, only a next
// line that continues it says so. These are blank lines (a trace often ends with one, and
// chained Python tracebacks or Node's version line come after one) and Node's location /
// source / caret preamble, which looks like nothing before its exception line. A bit set, as
// the test runs on every line fed.
const tentativeStates uint64 = 1<<pyBlank | 1<<javaBlank | 1<<javaExcBlank | 1<<nodeLocation |
	1<<nodeSource | 1<<nodeCaret | 1<<nodeBlank | 1<<goGoroutine

func tentativeState(st uint8) bool { return st < 64 && tentativeStates>>st&1 != 0 }

// builtin is the machine of the enabled languages.
type builtin struct{ langs lang }

func (b builtin) on(l lang) bool { return b.langs&l != 0 }

// start returns the state a line puts the idle machine in, 0 if it starts no trace. It looks
// at the first byte, the end of the line, and the bytes before each ':' (one IndexByte pass):
// every start pattern of every language has one of those shapes.
func (b builtin) start(line []byte) uint8 {
	line = trimCR(line)
	if len(line) == 0 {
		return 0
	}
	if line[0] == '{' && line[len(line)-1] == '}' {
		// A JSON record (structured logging) is whole by itself: a trace it carries is in a
		// string value, and no runtime prints one frame per line after it.
		return 0
	}
	switch line[0] {
	case 'T':
		if b.on(langPython) && string(line) == "Traceback (most recent call last):" {
			return pyTrace
		}
	case 'f':
		if b.on(langGo) && bytes.HasPrefix(line, []byte("fatal error: ")) {
			return goAfterPanic
		}
	case 'U':
		if b.on(langDart) && string(line) == "Unhandled exception:" {
			return dartException
		}
	case ' ':
		if b.on(langPython) && isPythonGroupStart(line) {
			return pyGroup
		}
	}
	if b.on(langJava) && endsWithExceptionWord(line) {
		return javaAfterException
	}
	if b.on(langRuby) && len(line) > 2 && line[len(line)-1] == ':' && line[len(line)-2] == ')' &&
		bytes.Contains(line, []byte("Error (")) {
		return rubyBefore // Rails: "ActionView::Template::Error (undefined method ...):"
	}
	for off := 0; ; {
		i := bytes.IndexByte(line[off:], ':')
		if i < 0 {
			if b.on(langJava) && off > 0 && isDigit(line[len(line)-1]) && isNodeLocation(line, off-1) {
				return nodeLocation
			}
			return 0
		}
		i += off
		off = i + 1
		if i == 0 {
			continue
		}
		head, rest := line[:i], line[i+1:]
		switch line[i-1] {
		case 'n', 'r', 'e', 'g':
			if b.on(langPHP) && isPHPHead(head) {
				return phpBegin
			}
			if b.on(langJava) && endsWithExceptionWord(head) {
				return javaAfterException
			}
		case 'c':
			if b.on(langGo) && len(rest) > 0 && rest[0] == ' ' && bytes.HasSuffix(head, []byte("panic")) &&
				(len(head) == 5 || !isWordByte(head[len(head)-6])) {
				return goAfterPanic
			}
		case 'p':
			if b.on(langGo) && bytes.HasSuffix(head, []byte("http")) && bytes.HasPrefix(rest, []byte(" panic serving ")) {
				return goGoroutine // net/http logs the panic, then the goroutine dump
			}
		case ']':
			if b.on(langJava) && isNodeCodedError(head) {
				return javaAfterException
			}
		case 'b':
			if b.on(langRuby) && bytes.HasSuffix(head, []byte(".rb")) && isRubyLocation(rest) && line[len(line)-1] == ')' {
				return rubyTrace // "/app/x.rb:3:in 'foo': boom (RuntimeError)", then "\tfrom ..." lines
			}
		}
	}
}

// next returns the state after line in state st; ok false means the line does not belong to
// the trace. A state of 0 with ok true means the line ends the trace.
func (b builtin) next(st uint8, line []byte) (uint8, bool) {
	line = trimCR(line)
	t := trimIndent(line)
	indented := len(t) < len(line)
	switch st {
	case javaNested:
		if isJavaExceptionLine(line) {
			return javaAfterException, true
		}
		return 0, false
	case javaBlank:
		if bytes.HasPrefix(line, []byte("Node.js v")) {
			return 0, true // Node ends an uncaught exception with its version
		}
		return 0, false
	case nodeLocation:
		if len(line) == 0 || b.start(line) != 0 {
			return 0, false
		}
		return nodeSource, true
	case nodeSource:
		if isCaretLine(t) {
			return nodeCaret, true
		}
		return 0, false
	case nodeCaret:
		if len(line) == 0 {
			return nodeBlank, true
		}
		return 0, false
	case nodeBlank:
		if isJavaExceptionLine(line) {
			return javaAfterException, true
		}
		return 0, false
	case javaExcBlank:
		if len(line) == 0 {
			return javaExcBlank, true
		}
		return b.next(javaAfterException, line)
	case javaAfterException, javaFrames:
		switch {
		case st == javaAfterException && len(line) == 0:
			return javaExcBlank, true
		case st == javaFrames && len(line) == 0:
			return javaBlank, true
		case st == javaAfterException && bytes.HasPrefix(t, []byte("nested exception is:")) &&
			len(trimIndent(t[len("nested exception is:"):])) == 0:
			return javaNested, true
		case indented && (bytes.HasPrefix(t, []byte("at ")) || bytes.HasPrefix(t, []byte("eval at "))):
			return javaFrames, true
		case bytes.HasPrefix(t, []byte("Caused by:")) || bytes.HasPrefix(t, []byte("Suppressed:")):
			return javaAfterException, true
		case bytes.HasPrefix(t, []byte("... ")) && isOmittedFrames(t[4:]):
			return javaFrames, true
		case bytes.HasPrefix(t, []byte("---> ")): // .NET inner exception
			return javaAfterException, true
		case indented && string(t) == "--- End of inner exception stack trace ---",
			bytes.HasPrefix(line, []byte("--- End of stack trace from previous location")):
			return javaFrames, true
		}
		return 0, false
	case pyCode:
		if indented {
			if bytes.HasPrefix(t, []byte("File ")) {
				return pyCode, true // a frame without source
			}
			return pyTrace, true
		}
		return b.next(pyTrace, line)
	case pyTrace:
		switch {
		case indented && bytes.HasPrefix(t, []byte("File ")):
			return pyCode, true
		case indented && (isCaretLine(t) || bytes.HasPrefix(t, []byte("[Previous line repeated "))):
			return pyTrace, true
		case !indented && isPythonExceptionLine(line):
			return pyAfterException, true
		}
		return 0, false
	case pyAfterException, pyGroup:
		switch {
		case len(line) == 0:
			return pyBlank, true
		case st == pyGroup && indented && len(t) > 0 && (t[0] == '|' || t[0] == '+'):
			return pyGroup, true
		}
		return 0, false
	case pyBlank:
		if string(line) == "During handling of the above exception, another exception occurred:" ||
			string(line) == "The above exception was the direct cause of the following exception:" {
			return pyChain, true
		}
		return 0, false
	case pyChain:
		if len(line) == 0 {
			return pyChainBlank, true
		}
		return 0, false
	case pyChainBlank:
		switch {
		case string(line) == "Traceback (most recent call last):":
			return pyTrace, true
		case isPythonGroupStart(line):
			return pyGroup, true
		}
		return 0, false
	case goAfterPanic:
		switch {
		case len(line) == 0:
			return goGoroutine, true
		case bytes.HasPrefix(line, []byte("[signal ")):
			return goAfterSignal, true
		case line[0] == '\t': // "\tpanic: second" after "panic: first [recovered]"
			return goAfterPanic, true
		}
		return 0, false
	case goAfterSignal:
		if len(line) == 0 {
			return goGoroutine, true
		}
		return 0, false
	case goGoroutine:
		if bytes.HasPrefix(line, []byte("goroutine ")) && bytes.HasSuffix(line, []byte("]:")) {
			return goFrame, true
		}
		return 0, false
	case goFrame:
		switch {
		case len(line) == 0:
			return goGoroutine, true
		case bytes.HasPrefix(line, []byte("created by ")) || isGoFunctionLine(line):
			return goFrameFile, true
		case string(line) == "...additional frames elided...":
			return goFrame, true
		}
		return 0, false
	case goFrameFile:
		if indented {
			return goFrame, true
		}
		return 0, false
	case rubyBefore:
		if string(line) == "  " || (indented && isRubyFrame(t)) {
			return rubyTrace, true
		}
		return 0, false
	case rubyTrace:
		if indented && (isRubyFrame(t) || (bytes.HasPrefix(t, []byte("... ")) && bytes.HasSuffix(t, []byte(" levels...")))) {
			return rubyTrace, true
		}
		return 0, false
	case phpBegin:
		if bytes.HasPrefix(line, []byte("Stack trace:")) {
			return phpFrames, true
		}
		return 0, false
	case phpFrames:
		switch {
		case len(line) > 1 && line[0] == '#' && isDigit(line[1]):
			return phpFrames, true
		case indented && bytes.HasPrefix(t, []byte("thrown in ")):
			return 0, true
		}
		return 0, false
	case dartException:
		if len(line) > 0 {
			return dartMessage, true
		}
		return 0, false
	case dartMessage, dartMessage2, dartStack:
		switch {
		case isDartFrame(line) || (st == dartStack && string(line) == "<asynchronous suspension>"):
			return dartStack, true
		case st == dartMessage && len(line) > 0: // type errors print the source line and a caret
			return dartMessage2, true
		}
		return 0, false
	}
	return 0, false
}

// isJavaExceptionLine: a word ending in Exception, Error or Throwable before a ':' or at the
// end of the line.
func isJavaExceptionLine(line []byte) bool {
	if len(line) == 0 {
		return false
	}
	if endsWithExceptionWord(line) {
		return true
	}
	for off := 0; ; {
		i := bytes.IndexByte(line[off:], ':')
		if i < 0 {
			return false
		}
		i += off
		off = i + 1
		if i > 0 && (endsWithExceptionWord(line[:i]) || isNodeCodedError(line[:i])) {
			return true
		}
	}
}

// endsWithExceptionWord: the line ends with a word ending in Exception, Error or Throwable
// (a Java, Node or .NET exception class), or with V8's "V8 errors stack trace".
func endsWithExceptionWord(b []byte) bool {
	switch b[len(b)-1] {
	case 'n':
		return bytes.HasSuffix(b, []byte("Exception"))
	case 'r':
		return bytes.HasSuffix(b, []byte("Error"))
	case 'e':
		return bytes.HasSuffix(b, []byte("Throwable")) || bytes.HasSuffix(b, []byte("V8 errors stack trace"))
	}
	return false
}

// isNodeCodedError: Node's "Error [ERR_MODULE_NOT_FOUND]", "TypeError [ERR_INVALID_ARG_TYPE]"
// before the ':' of an exception line.
func isNodeCodedError(head []byte) bool {
	if len(head) < 3 || head[len(head)-1] != ']' {
		return false
	}
	i := bytes.LastIndex(head, []byte(" ["))
	return i > 0 && endsWithExceptionWord(head[:i])
}

func isPHPHead(head []byte) bool {
	i := bytes.LastIndex(head, []byte("PHP "))
	if i < 0 {
		return false
	}
	switch string(head[i+4:]) {
	case "Notice", "Parse error", "Fatal error", "Warning":
		return true
	}
	return false
}

// isOmittedFrames: "12 more" or "12 common frames omitted".
func isOmittedFrames(b []byte) bool {
	n := 0
	for n < len(b) && isDigit(b[n]) {
		n++
	}
	if n == 0 {
		return false
	}
	rest := string(b[n:])
	return rest == " more" || rest == " common frames omitted"
}

// isCaretLine: Python 3.11's markers under a code line ("    ^^^^^~~~").
func isCaretLine(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for _, c := range t {
		if c != '^' && c != '~' && c != ' ' {
			return false
		}
	}
	return true
}

// isPythonExceptionLine: a dotted name followed by ':' or ending the line
// ("ValueError: bad", "requests.exceptions.HTTPError: 404", "KeyboardInterrupt").
func isPythonExceptionLine(line []byte) bool {
	seg := 0
	for _, c := range line {
		switch c {
		case ':':
			return seg > 0
		case '.':
			if seg == 0 {
				return false
			}
			seg = 0
		case ' ', '\t', '(', ')':
			return false
		default:
			seg++
		}
	}
	return seg > 0
}

// isPythonGroupStart: "  + Exception Group Traceback (most recent call last):", how Python
// 3.11 begins an exception group (its lines then begin with "|" or "+").
func isPythonGroupStart(line []byte) bool {
	t := trimIndent(line)
	return len(t) < len(line) && string(t) == "+ Exception Group Traceback (most recent call last):"
}

// isNodeLocation: "/app/server.js:12" or "node:internal/process/esm_loader:40" (colon is
// the last ':', the line ends with a digit), the line Node prints first for an uncaught exception: a script path and a
// line number, nothing else.
func isNodeLocation(line []byte, colon int) bool {
	for _, c := range line[colon+1:] {
		if !isDigit(c) {
			return false
		}
	}
	if bytes.IndexByte(line, ' ') >= 0 {
		return false
	}
	head := line[:colon]
	for _, ext := range []string{".js", ".mjs", ".cjs", ".ts", ".jsx", ".tsx"} {
		if bytes.HasSuffix(head, []byte(ext)) {
			return true
		}
	}
	return bytes.HasPrefix(head, []byte("node:"))
}

// isGoFunctionLine: a goroutine dump's function line, "main.(*T).run(...)",
// "main.F[...](0x1)": no leading blank, a '(' with no blank before it.
func isGoFunctionLine(line []byte) bool {
	i := bytes.IndexByte(line, '(')
	return i > 0 && line[0] != ' ' && line[0] != '\t' && bytes.IndexByte(line[:i], ' ') < 0
}

// isRubyLocation: what follows "file.rb:" in a Ruby frame, "12:in ".
func isRubyLocation(rest []byte) bool {
	n := 0
	for n < len(rest) && isDigit(rest[n]) {
		n++
	}
	return n > 0 && bytes.HasPrefix(rest[n:], []byte(":in "))
}

// isRubyFrame: "app/models/user.rb:12:in `save'", "from /app/x.rb:3:in 'foo'" or a template,
// "app/views/show.html.erb:5:in `_render'".
func isRubyFrame(t []byte) bool {
	for off := 0; ; {
		i := bytes.Index(t[off:], []byte("rb:"))
		if i < 0 {
			return false
		}
		off += i + 3
		if isRubyLocation(t[off:]) {
			return true
		}
	}
}

// isDartFrame: "#0      main (file:///app/bin/main.dart:5:3)".
func isDartFrame(line []byte) bool {
	if len(line) < 2 || line[0] != '#' || !isDigit(line[1]) || line[len(line)-1] != ')' {
		return false
	}
	return bytes.IndexByte(line, '(') > 0
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func trimIndent(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordByte(c byte) bool {
	return c == '_' || isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}
