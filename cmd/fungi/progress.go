package main

import (
	"fmt"
	"io"

	"github.com/fungi-go/fungi/messages"
)

// progressPrinter shows the steps of a pull. On a terminal each image
// layer and each download keeps one line that is redrawn in place; piped
// or to a file it writes one line per event (a layer's new status, a
// download's start and end) and never a control sequence, so logs stay
// readable.
type progressPrinter struct {
	w    io.Writer
	live bool
	// keys are the board's lines in order; text is what each shows.
	keys  []string
	text  map[string]string
	drawn int
	// last is, piped, the last event printed per line key.
	last map[string]string
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, live: isTerminal(w), text: map[string]string{}, last: map[string]string{}}
}

// maxBoardLines bounds the lines redrawn in place: an image with more
// layers than that scrolls the oldest off the board instead.
const maxBoardLines = 64

func (p *progressPrinter) print(step *messages.PullProgress) {
	step = humanSafe(step)
	line := progressLine(step)
	key := "layer " + step.Layer
	if step.Layer == "" {
		// A download updates its own line; any other step is a line of
		// its own.
		key = fmt.Sprintf("step %d", len(p.keys))
		if step.Total > 0 || step.Current > 0 {
			key = "download " + step.Message
		}
	}
	if !p.live {
		event := step.Message
		if step.Total > 0 && step.Current >= step.Total {
			event += " done"
		}
		if p.last[key] == event {
			return
		}
		p.last[key] = event
		fmt.Fprintln(p.w, line)
		return
	}
	if _, ok := p.text[key]; !ok {
		p.keys = append(p.keys, key)
		if len(p.keys) > maxBoardLines {
			// The oldest line stays printed above; only the rest is redrawn.
			delete(p.text, p.keys[0])
			p.keys = p.keys[1:]
			p.drawn--
		}
	}
	p.text[key] = line
	p.redraw()
}

// redraw moves the cursor up over the board and prints it again, each
// line cleared first.
func (p *progressPrinter) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, k := range p.keys {
		fmt.Fprintf(p.w, "\x1b[2K%s\n", p.text[k])
	}
	p.drawn = len(p.keys)
}

// progressLine is one step as text; a step with a size gets a bar.
func progressLine(p *messages.PullProgress) string {
	prefix := ""
	if p.Layer != "" {
		prefix = p.Layer + " "
	}
	switch {
	case p.Total > 0:
		return fmt.Sprintf("%s%s %s %s/%s", prefix, p.Message, bar(p.Current, p.Total, 24), humanBytes(p.Current), humanBytes(p.Total))
	case p.Current > 0:
		return fmt.Sprintf("%s%s %s", prefix, p.Message, humanBytes(p.Current))
	default:
		return prefix + p.Message
	}
}

// printProgress prints one step as a line of its own, for a single
// external step where no board is kept.
func printProgress(w io.Writer, p *messages.PullProgress) {
	fmt.Fprintln(w, progressLine(humanSafe(p)))
}
