package funchost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// HandlerEventKind says what happened to the handler process.
type HandlerEventKind string

const (
	HandlerStarted HandlerEventKind = "started" // the process was started
	HandlerReady   HandlerEventKind = "ready"   // it answered GET /
	HandlerExited  HandlerEventKind = "exited"  // it exited or was stopped
)

// HandlerEvent reports a change in the handler process, for tests and tools.
type HandlerEvent struct {
	Kind HandlerEventKind
	PID  int
	Port int
	Err  error // why it exited, or why it never became ready
}

// startAttempts is how many times a handler that has never been ready is
// started before Run gives up.
const startAttempts = 3

// handlerStopGrace is how long the handler gets between SIGTERM and SIGKILL.
const handlerStopGrace = 5 * time.Second

// worker runs the custom handler process and restarts it when it dies, as
// the host's worker channel does.
type worker struct {
	app  *App
	opts *Options
	log  *slog.Logger
	port int

	mu    sync.Mutex
	ready bool
	wake  chan struct{} // closed when the handler becomes ready
	proc  *process      // the running handler, once started
}

func newWorker(app *App, opts *Options, log *slog.Logger) *worker {
	return &worker{app: app, opts: opts, log: log, wake: make(chan struct{})}
}

// baseURL is where the host sends every request; the port stays the same
// across restarts, as the host's does.
func (w *worker) baseURL() string { return "http://127.0.0.1:" + strconv.Itoa(w.port) }

// waitReady blocks until the handler has answered GET / and has not died
// since, or ctx ends.
func (w *worker) waitReady(ctx context.Context) error {
	for {
		w.mu.Lock()
		ready, wake := w.ready, w.wake
		w.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *worker) setReady(ready bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ready == w.ready {
		return
	}
	w.ready = ready
	if ready {
		close(w.wake)
	} else {
		w.wake = make(chan struct{})
	}
}

// notReachable is told that the handler refused a connection. It reports whether the process
// has exited, and if so marks the handler not ready at once: the process watcher will restart it,
// but until then nothing must be sent to its port.
func (w *worker) notReachable() (exited bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil {
		return false
	}
	select {
	case <-w.proc.done:
	default:
		return false
	}
	if w.ready {
		w.ready = false
		w.wake = make(chan struct{})
	}
	return true
}

func (w *worker) emit(ev HandlerEvent) {
	if w.opts.OnHandler != nil {
		w.opts.OnHandler(ev)
	}
}

// pickPort returns customHandler.port, or a free loopback port.
func (w *worker) pickPort() error {
	if w.app.Host.Port != 0 {
		w.port = w.app.Host.Port
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("finding a free port for the handler: %w", err)
	}
	w.port = l.Addr().(*net.TCPAddr).Port
	return l.Close()
}

// environ is the handler's environment: funchost's own, then every app
// setting, then the variables the host sets for a custom handler.
func (w *worker) environ(workerID string) []string {
	env := append([]string(nil), w.opts.Environ...)
	if w.opts.Environ == nil {
		env = os.Environ()
	}
	keys := make([]string, 0, len(w.app.Settings))
	for k := range w.app.Settings {
		if k != "" && !strings.ContainsAny(k, "=\x00") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+w.app.Settings[k])
	}
	port := strconv.Itoa(w.port)
	return append(env,
		"FUNCTIONS_CUSTOMHANDLER_PORT="+port,
		"FUNCTIONS_HTTPWORKER_PORT="+port,
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+workerID,
		"FUNCTIONS_HTTPWORKER_ID="+workerID,
		"FUNCTIONS_APP_ROOT_PATH="+w.app.Dir,
		"FUNCTIONS_WORKER_RUNTIME=custom",
	)
}

// process is one run of the handler.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done is closed
}

func (w *worker) start() (*process, error) {
	h := w.app.Host
	cmd := exec.Command(h.ExecutablePath, h.Arguments...)
	cmd.Dir = h.WorkingDirectory
	cmd.Env = w.environ(uuid.NewString())
	cmd.Stdout = newLineLogger(w.log, "stdout")
	cmd.Stderr = newLineLogger(w.log, "stderr")
	// A grandchild holding the output pipes open must not stall Wait.
	cmd.WaitDelay = 2 * time.Second
	configureProcess(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting handler %s: %w", h.ExecutablePath, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	w.mu.Lock()
	w.proc = p
	w.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		cmd.Stdout.(*lineLogger).flush()
		cmd.Stderr.(*lineLogger).flush()
		close(p.done)
	}()
	w.log.Info("handler started", "pid", cmd.Process.Pid, "port", w.port, "path", h.ExecutablePath)
	w.emit(HandlerEvent{Kind: HandlerStarted, PID: cmd.Process.Pid, Port: w.port})
	return p, nil
}

// stop asks the handler to exit and kills it after handlerStopGrace.
func (w *worker) stop(p *process) {
	select {
	case <-p.done:
		return
	default:
	}
	signalProcess(p.cmd, false)
	select {
	case <-p.done:
	case <-time.After(handlerStopGrace):
		w.log.Warn("handler ignored SIGTERM; killing it", "pid", p.cmd.Process.Pid)
		signalProcess(p.cmd, true)
		<-p.done
	}
}

// pollReady sends GET / until any HTTP response arrives, as the host does;
// connection errors mean "not yet".
func (w *worker) pollReady(ctx context.Context, p *process) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(w.opts.ReadyTimeout)
	for {
		reqCtx, cancel := context.WithTimeout(ctx, min(time.Until(deadline), 5*time.Second))
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, w.baseURL()+"/", nil)
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("handler did not answer GET / within %s (it must listen on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT)", w.opts.ReadyTimeout)
		}
		select {
		case <-p.done:
			return fmt.Errorf("handler exited before it answered GET /: %v", exitText(p.err))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.opts.ReadyPollInterval):
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// errGaveUp wraps the error Run returns when the handler keeps failing.
var errGaveUp = errors.New("handler keeps failing")

// run starts the handler and keeps it running until ctx ends, restarting it
// with exponential backoff capped at MaxRestartDelay, for as long as it takes,
// as the platform restarts a failed host. It returns nil when ctx ends, and an
// error only when the handler cannot be started at all or never becomes ready
// in its first startAttempts starts (a configuration error, not a crash).
func (w *worker) run(ctx context.Context) error {
	failures, everReady := 0, false
	for {
		p, err := w.start()
		if err != nil {
			return err // a missing or unrunnable executable will not fix itself
		}
		err = w.pollReady(ctx, p)
		if ctx.Err() != nil {
			w.stop(p)
			w.emit(HandlerEvent{Kind: HandlerExited, PID: p.cmd.Process.Pid, Port: w.port})
			return nil
		}
		if err == nil {
			began := time.Now()
			w.log.Info("handler ready", "pid", p.cmd.Process.Pid, "port", w.port)
			w.setReady(true)
			everReady = true
			w.emit(HandlerEvent{Kind: HandlerReady, PID: p.cmd.Process.Pid, Port: w.port})
			select {
			case <-ctx.Done():
				w.setReady(false)
				w.stop(p)
				w.log.Info("handler stopped", "pid", p.cmd.Process.Pid)
				w.emit(HandlerEvent{Kind: HandlerExited, PID: p.cmd.Process.Pid, Port: w.port})
				return nil
			case <-p.done:
			}
			w.setReady(false)
			err = fmt.Errorf("handler exited: %s", exitText(p.err))
			if time.Since(began) >= w.opts.RestartResetAfter {
				failures = 0
			}
		} else {
			w.stop(p)
		}
		failures++
		w.log.Error("handler failed", "pid", p.cmd.Process.Pid, "error", err, "failures", failures)
		w.emit(HandlerEvent{Kind: HandlerExited, PID: p.cmd.Process.Pid, Port: w.port, Err: err})
		// Before the first success a failure is most likely configuration
		// (a missing setting, a wrong port), so do not retry for minutes.
		if !everReady && failures >= startAttempts {
			return fmt.Errorf("%w: it never became ready in %d attempts, last: %v", errGaveUp, failures, err)
		}
		delay := w.opts.RestartDelay << (failures - 1)
		if delay > w.opts.MaxRestartDelay || delay <= 0 {
			delay = w.opts.MaxRestartDelay
		}
		w.log.Info("restarting handler", "in", delay.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// lineLogger forwards a stream of the handler's output to the log, a line
// at a time, as the host forwards worker console output.
type lineLogger struct {
	log    *slog.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

func newLineLogger(log *slog.Logger, stream string) *lineLogger {
	return &lineLogger{log: log, stream: stream}
}

const maxLine = 64 << 10

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxLine {
				l.emit(l.buf)
				l.buf = l.buf[:0]
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	l.log.Info("handler output", "stream", l.stream, "line", string(line))
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}
