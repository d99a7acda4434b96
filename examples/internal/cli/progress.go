package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/pipeline"
)

// IsTerminal reports whether w is a terminal, where progress is redrawn in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// line writes progress: on a terminal it redraws one line in place (clipped to the terminal's
// width so it never wraps), elsewhere it writes whole lines.
type line struct {
	w     io.Writer
	tty   bool
	width int
	open  bool // a redrawn line is on screen and needs a newline before other output
}

func newLine(w io.Writer, tty bool) *line {
	l := &line{w: w, tty: tty, width: 80}
	if f, ok := w.(*os.File); ok && tty {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			l.width = cols
		}
	}
	return l
}

// redraw replaces the current terminal line with s.
func (l *line) redraw(s string) {
	if r := []rune(s); len(r) > l.width-1 {
		s = string(r[:l.width-1])
	}
	fmt.Fprintf(l.w, "\r%s\x1b[K", s)
	l.open = true
}

// println ends a redrawn line, if any, and writes s on a line of its own.
func (l *line) println(s string) {
	l.end()
	fmt.Fprintln(l.w, s)
}

func (l *line) end() {
	if l.open {
		fmt.Fprintln(l.w)
		l.open = false
	}
}

// StepBar shows the denoising loop's progress.
type StepBar struct{ *line }

// NewStepBar writes to w, redrawing one line when tty.
func NewStepBar(w io.Writer, tty bool) *StepBar { return &StepBar{newLine(w, tty)} }

// Update shows p; it is a Request.Progress function.
func (b *StepBar) Update(p pipeline.Progress) {
	s := stepText(p)
	if b.tty && p.Step < p.Total {
		b.redraw(fmt.Sprintf("%s %s", bar(p.Step, p.Total, 24), s))
		return
	}
	if b.tty {
		b.redraw(fmt.Sprintf("%s %s", bar(p.Step, p.Total, 24), s))
		b.end()
	} else {
		b.println(s)
	}
	if p.Step == p.Total {
		fmt.Fprintln(b.w, "decoding…")
	}
}

// Finish ends the bar's line.
func (b *StepBar) Finish() { b.end() }

// stepText describes a step: "step 7/26 (t=541): 1.32 it/s, 14s left".
func stepText(p pipeline.Progress) string {
	if p.Step == 0 {
		return fmt.Sprintf("step 0/%d: denoising", p.Total)
	}
	s := fmt.Sprintf("step %d/%d (t=%g): %s", p.Step, p.Total, p.Timestep, rate(p.Step, p.Elapsed))
	if left := p.Total - p.Step; left > 0 {
		s += ", " + duration(p.Elapsed*time.Duration(left)/time.Duration(p.Step)) + " left"
	} else {
		s += ", took " + duration(p.Elapsed)
	}
	return s
}

// rate formats steps per second, or seconds per step when slower than one a second.
func rate(steps int, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "– it/s"
	}
	per := elapsed.Seconds() / float64(steps)
	if per > 1 {
		return fmt.Sprintf("%.2f s/it", per)
	}
	return fmt.Sprintf("%.2f it/s", 1/per)
}

// bar draws "[#######.........]" for done of total.
func bar(done, total, width int) string {
	n := 0
	if total > 0 {
		n = done * width / total
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// duration formats a time left: "45s", "3m05s", "1h02m".
func duration(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
	}
}

// DownloadBar shows a Hub download's progress.
type DownloadBar struct {
	*line
	file      string
	lastPrint time.Time
}

// NewDownloadBar writes to w, redrawing one line when tty.
func NewDownloadBar(w io.Writer, tty bool) *DownloadBar {
	return &DownloadBar{line: newLine(w, tty)}
}

// Update shows p; it is a hub.WithProgress function.
func (b *DownloadBar) Update(p hub.Progress) {
	done := p.Total >= 0 && p.Done >= p.Total
	s := downloadText(p)
	if b.tty {
		if p.File != b.file {
			b.end() // keep the finished file's last line
		}
		b.redraw(s)
	} else if done || time.Since(b.lastPrint) >= 5*time.Second {
		b.println(s)
		b.lastPrint = time.Now()
	}
	b.file = p.File
}

// Finish ends the bar's line.
func (b *DownloadBar) Finish() { b.end() }

// downloadText describes a file transfer:
// "[3/8] unet/diffusion_pytorch_model.bin 120 MB/1.16 GB, 12.3 MB/s, 1m25s left (all 12%)".
func downloadText(p hub.Progress) string {
	s := fmt.Sprintf("[%d/%d] %s %s", p.Index, p.Count, p.File, bytesText(p.Done))
	if p.Total >= 0 {
		s += "/" + bytesText(p.Total)
	}
	if p.Total >= 0 && p.Done >= p.Total {
		s += ", done"
	} else {
		if p.Rate > 0 {
			s += ", " + bytesText(int64(p.Rate)) + "/s"
		}
		if p.Remaining > 0 {
			s += ", " + duration(p.Remaining) + " left"
		}
	}
	if p.AllTotal > 0 && p.Count > 1 {
		s += fmt.Sprintf(" (all %d%%)", p.AllDone*100/p.AllTotal)
	}
	return s
}

// bytesText formats a byte count in decimal units, as the Hub shows sizes.
func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.3g %cB", v, " kMGT"[u])
}
