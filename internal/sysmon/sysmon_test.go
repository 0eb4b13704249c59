package sysmon

import (
	"slices"
	"testing"
)

func TestWithSetting(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"HOME=/h"}, []string{"HOME=/h", "GODEBUG=" + Setting}, true},
		{"empty GODEBUG", []string{"GODEBUG="}, []string{"GODEBUG=" + Setting}, true},
		{"other settings kept", []string{"GODEBUG=madvdontneed=1", "A=b"}, []string{"GODEBUG=madvdontneed=1," + Setting, "A=b"}, true},
		{"the user's schedtrace wins", []string{"GODEBUG=schedtrace=0"}, []string{"GODEBUG=schedtrace=0"}, false},
		{"already set", []string{"GODEBUG=x=1," + Setting}, []string{"GODEBUG=x=1," + Setting}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, changed := withSetting(c.env)
			if changed != c.changed || !slices.Equal(got, c.want) {
				t.Fatalf("withSetting(%q) = %q, %v; want %q, %v", c.env, got, changed, c.want, c.changed)
			}
		})
	}
}
