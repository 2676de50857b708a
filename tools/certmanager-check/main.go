// Command certmanager-check reads Kubernetes objects (YAML documents) on
// stdin and decodes every cert-manager.io/v1 object strictly into
// cert-manager's own Go API types: a misspelt or unknown field, or a value
// of the wrong type (a duration that does not parse, a string where a list
// belongs), is reported and the command exits 1. Other objects are skipped.
// It prints one line per object checked.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const group = "cert-manager.io/v1"

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// target is the Go type of a cert-manager kind, or nil for a kind this check does not know.
func target(kind string) any {
	switch kind {
	case "Certificate":
		return &cmapi.Certificate{}
	case "Issuer":
		return &cmapi.Issuer{}
	case "ClusterIssuer":
		return &cmapi.ClusterIssuer{}
	}
	return nil
}

func check(doc []byte) (string, error) {
	var h header
	if err := yaml.Unmarshal(doc, &h); err != nil {
		return "", err
	}
	if h.APIVersion != group {
		return "", nil
	}
	into := target(h.Kind)
	if into == nil {
		return "", fmt.Errorf("%s %s: not a kind this check knows", h.Kind, h.Metadata.Name)
	}
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		return "", fmt.Errorf("%s %s: %w", h.Kind, h.Metadata.Name, err)
	}
	return fmt.Sprintf("ok %s %s", h.Kind, h.Metadata.Name), nil
}

func main() {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(os.Stdin))
	failed := false
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "certmanager-check:", err)
			os.Exit(2)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		line, err := check(doc)
		if err != nil {
			fmt.Fprintln(os.Stderr, "certmanager-check:", err)
			failed = true
		} else if line != "" {
			fmt.Println(line)
		}
	}
	if failed {
		os.Exit(1)
	}
}
