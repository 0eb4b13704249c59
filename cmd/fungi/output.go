package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonOptions give every --json output the same stable shape: camelCase
// field names, every field present even when empty.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// marshalJSON is protojson's output re-indented by encoding/json, whose
// spacing, unlike protojson's, is stable from run to run.
func marshalJSON(m proto.Message) ([]byte, error) {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := marshalJSON(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// printJSONList prints messages as one JSON array.
func printJSONList[M proto.Message](w io.Writer, items []M) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "[]")
		return err
	}
	parts := make([]string, len(items))
	for i, m := range items {
		b, err := marshalJSON(m)
		if err != nil {
			return err
		}
		parts[i] = "  " + strings.ReplaceAll(string(b), "\n", "\n  ")
	}
	_, err := fmt.Fprintf(w, "[\n%s\n]\n", strings.Join(parts, ",\n"))
	return err
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func jsonMarshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
