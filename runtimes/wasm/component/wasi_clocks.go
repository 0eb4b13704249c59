package component

import "time"

// clocksHost is the wasi:clocks part of hostFuncs.
var clocksHost = map[string]map[string]hostDef{
	"wasi:clocks/wall-clock": {
		"now": {"func() -> datetime", func(c *cx, a []any) []any {
			t := time.Now()
			return []any{[]any{uint64(t.Unix()), uint32(t.Nanosecond())}}
		}},
		"resolution": {"func() -> datetime", func(c *cx, a []any) []any { return []any{[]any{uint64(0), uint32(1)}} }},
	},
	"wasi:clocks/monotonic-clock": {
		"now":        {"func() -> instant", func(c *cx, a []any) []any { return []any{monotonicNow()} }},
		"resolution": {"func() -> duration", func(c *cx, a []any) []any { return []any{uint64(1)} }},
		"subscribe-instant": {"func(when: instant) -> pollable", func(c *cx, a []any) []any {
			return []any{&pollable{deadline: a[0].(uint64), timed: true}}
		}},
		"subscribe-duration": {"func(when: duration) -> pollable", func(c *cx, a []any) []any {
			return []any{&pollable{deadline: monotonicNow() + a[0].(uint64), timed: true}}
		}},
	},
}

var monoBase = time.Now()

func monotonicNow() uint64 { return uint64(time.Since(monoBase).Nanoseconds()) }
