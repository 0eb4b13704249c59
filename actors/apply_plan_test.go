package actors

import (
	"fmt"
	"testing"
)

func TestManifestChangesFieldByField(t *testing.T) {
	old := []byte("metadata: {name: a}\nspec:\n  env: {A: one, B: two}\n  ports: [{name: http, hostPort: auto}]\n  command: [x]\n")
	nw := []byte("metadata: {name: a}\nspec:\n  env: {A: one, C: three}\n  ports: [{name: http, hostPort: 8080}]\n")
	changes, err := manifestChanges(old, nw)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, fmt.Sprintf("%s: %q -> %q", c.Field, c.Old, c.New))
	}
	want := []string{
		`spec.command[0]: "x" -> ""`,
		`spec.env.B: "two" -> ""`,
		`spec.env.C: "" -> "three"`,
		`spec.ports[0].hostPort: "auto" -> "8080"`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes:\n%v\nwant:\n%v", got, want)
	}
	if same, _ := manifestChanges(old, old); len(same) != 0 {
		t.Fatalf("the same manifest changes %v", same)
	}
}
