// Package yamlcheck holds the checks every YAML file sfmigrate reads
// shares, so that no file is used in part without a word.
package yamlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// OneDocument returns an error when data holds a YAML document with
// content after the first one: a decoder reads only the first and would
// silently ignore the rest. Empty documents after it (a trailing "---",
// only comments) are accepted. Syntax errors in the first document are left to the
// caller's own decoding.
func OneDocument(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		return nil // empty, or the caller reports the syntax error
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("holds more than one YAML document, and the next one is not valid YAML: %w", err)
		case len(next.Content) > 0 && next.Content[0].ShortTag() != "!!null":
			return fmt.Errorf("holds more than one YAML document (the second starts near line %d); only one is read", next.Content[0].Line)
		}
	}
}
