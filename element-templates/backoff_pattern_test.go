package elementtemplates

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/mapping"
)

// The Modeler checks the Retry backoff field with the template's pattern (a
// JavaScript regular expression); the worker parses it with
// mapping.ParseISODuration. A value the first accepts and the second
// refuses would pass the Modeler and raise an incident on every job.
func TestRetryBackoffPatternAgreesWithTheWorker(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the pattern is a JavaScript regular expression")
	}
	var pattern string
	for _, p := range load(t).Properties {
		if p.ID == "retryBackoff" {
			pattern = p.Constraints.Pattern.Value
		}
	}
	if pattern == "" {
		t.Fatal("the retryBackoff property has no pattern")
	}
	samples := []string{"PT30S", "PT0S", "PT0.5S", "PT1M30S", "PT2H", "P1D", "P1DT12H", "P2DT3H4M5.5S",
		"P1W", "P1Y", "P1M", "P1Y2M", "P", "PT", "P1DT", "-PT1S", "30s", "PT1H2", "pt30s", "",
		"p1dt2h", "PT1,5S", "PT1,S", "p", "pt", "p1dt"}
	in, _ := json.Marshal(map[string]any{"pattern": pattern, "samples": samples})
	cmd := exec.Command(node, "-e", `
const {pattern, samples} = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const re = new RegExp(pattern);
process.stdout.write(JSON.stringify(samples.map((s) => re.test(s))));`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var modeler []bool
	if err := json.Unmarshal(out, &modeler); err != nil {
		t.Fatalf("node said %q: %v", out, err)
	}
	for i, s := range samples {
		_, werr := mapping.ParseISODuration(s)
		if worker := werr == nil; modeler[i] != worker {
			t.Errorf("%q: the template's pattern says %v, the worker says %v (%v)", s, modeler[i], worker, werr)
		}
	}
}
