// Package headless drives a headless Chromium for tests: it starts the
// browser with the DevTools protocol on a pipe (--remote-debugging-pipe:
// JSON messages separated by NUL bytes on file descriptors 3 and 4, no
// network port, no WebSocket), loads pages, evaluates JavaScript and takes
// screenshots. Only the standard library; no npm, no Playwright.
//
// A Browser is not safe for concurrent use.
package headless

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Find returns the path of a Chromium binary, or "" if there is none.
func Find() string {
	for _, c := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// Browser is a running headless Chromium with one page attached.
type Browser struct {
	cmd     *exec.Cmd
	out     *os.File // our end of the browser's fd 3
	msgs    chan message
	readErr chan error
	next    int
	session string
	stderr  *strings.Builder
}

type message struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Start runs the browser at path with a fresh profile in userDataDir and a
// window of width x height, and attaches to its page.
func Start(ctx context.Context, path, userDataDir string, width, height int) (*Browser, error) {
	toBrowser, ourOut, err := os.Pipe() // browser reads fd 3
	if err != nil {
		return nil, err
	}
	ourIn, fromBrowser, err := os.Pipe() // browser writes fd 4
	if err != nil {
		toBrowser.Close()
		ourOut.Close()
		return nil, err
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
		"--hide-scrollbars", "--mute-audio",
		"--user-data-dir="+userDataDir, fmt.Sprintf("--window-size=%d,%d", width, height),
		"--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	b := &Browser{cmd: cmd, out: ourOut, msgs: make(chan message, 64), readErr: make(chan error, 1), stderr: &strings.Builder{}}
	cmd.Stderr = limitWriter{b.stderr, 64 << 10}
	if err := cmd.Start(); err != nil {
		toBrowser.Close()
		fromBrowser.Close()
		ourOut.Close()
		ourIn.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	toBrowser.Close()
	fromBrowser.Close()
	go b.read(ourIn)

	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	var target string
	for target == "" {
		if err := b.call(ctx, "Target.getTargets", nil, &targets); err != nil {
			b.Close()
			return nil, err
		}
		for _, t := range targets.TargetInfos {
			if t.Type == "page" {
				target = t.TargetID
			}
		}
		if target == "" {
			select {
			case <-ctx.Done():
				b.Close()
				return nil, fmt.Errorf("chromium has no page: %w", ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "Target.attachToTarget", map[string]any{"targetId": target, "flatten": true}, &att); err != nil {
		b.Close()
		return nil, err
	}
	b.session = att.SessionID
	// The viewport exactly width x height, whatever the window's decorations.
	if err := b.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	b *strings.Builder
	n int
}

func (w limitWriter) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Stderr returns the start of what the browser wrote to its stderr.
func (b *Browser) Stderr() string { return b.stderr.String() }

func (b *Browser) read(in *os.File) {
	defer in.Close()
	r := bufio.NewReaderSize(in, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.readErr <- fmt.Errorf("chromium closed the DevTools pipe: %w", err)
			close(b.msgs)
			return
		}
		var m message
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.msgs <- m
	}
}

// call sends a DevTools command and decodes its result into out.
func (b *Browser) call(ctx context.Context, method string, params any, out any) error {
	b.next++
	req := map[string]any{"id": b.next, "method": method}
	if params != nil {
		req["params"] = params
	}
	if b.session != "" && !strings.HasPrefix(method, "Target.") && !strings.HasPrefix(method, "Browser.") {
		req["sessionId"] = b.session
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := b.out.Write(append(data, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", method, ctx.Err())
		case m, ok := <-b.msgs:
			if !ok {
				return fmt.Errorf("%s: %w", method, <-b.readErr)
			}
			if m.ID != b.next {
				continue // the answer to a call that timed out
			}
			if m.Error != nil {
				return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
			}
			if out != nil {
				return json.Unmarshal(m.Result, out)
			}
			return nil
		}
	}
}

// Navigate loads url and waits until the document has loaded.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigate to %s: %s", url, res.ErrorText)
	}
	return b.Wait(ctx, `document.readyState === "complete" && location.href === `+quote(url))
}

func quote(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// Eval evaluates a JavaScript expression in the page (awaiting it if it is
// a promise) and decodes its value into out (nil: ignore it).
func (b *Browser) Eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := b.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("evaluate %s: %s %s", expr, res.Exception.Text, res.Exception.Exception.Description)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// Wait evaluates expr every 50 ms until it is true or ctx ends.
func (b *Browser) Wait(ctx context.Context, expr string) error {
	var last error
	for {
		var ok bool
		if last = b.Eval(ctx, "!!("+expr+")", &ok); last == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last: %v)", expr, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Screenshot returns a PNG of the page's viewport.
func (b *Browser) Screenshot(ctx context.Context) ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(res.Data)
}

// Close asks the browser to quit and waits for it (killing its process
// group after 10 s).
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.call(ctx, "Browser.close", nil, nil)
	b.out.Close()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		return ignoreExit(err)
	case <-time.After(10 * time.Second):
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return errors.New("chromium did not quit within 10 s; killed")
	}
}

func ignoreExit(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // Browser.close may end it with a signal status
	}
	return err
}
