package elementtemplates

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/auth"
	"github.com/o365-mail-connector/o365-mail-connector/internal/operations"
)

const templateFile = "o365-mail-connector.json"

// property is the part of an element template property the checks read.
type property struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Value       json.RawMessage `json:"value"`
	Optional    bool            `json:"optional"`
	Feel        string          `json:"feel"`
	Choices     []choice        `json:"choices"`
	Constraints struct {
		NotEmpty bool `json:"notEmpty"`
		Pattern  struct {
			Value string `json:"value"`
		} `json:"pattern"`
	} `json:"constraints"`
	Condition *condition `json:"condition"`
	Binding   struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Key      string `json:"key"`
		Property string `json:"property"`
	} `json:"binding"`
}

type choice struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type condition struct {
	Property string   `json:"property"`
	Equals   *string  `json:"equals"`
	OneOf    []string `json:"oneOf"`
	AllMatch []any    `json:"allMatch"`
}

// values lists what the condition accepts.
func (c *condition) values() []string {
	if c.Equals != nil {
		return []string{*c.Equals}
	}
	return c.OneOf
}

type template struct {
	ID         string     `json:"id"`
	Version    int        `json:"version"`
	Properties []property `json:"properties"`
}

func load(t *testing.T) template {
	t.Helper()
	raw, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	if len(tpl.Properties) == 0 {
		t.Fatalf("%s: no properties", templateFile)
	}
	return tpl
}

// inputs returns the zeebe:input properties grouped by binding name.
func inputs(tpl template) map[string][]property {
	out := map[string][]property{}
	for _, p := range tpl.Properties {
		if p.Binding.Type == "zeebe:input" {
			out[p.Binding.Name] = append(out[p.Binding.Name], p)
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// choiceValues drops the empty choice of an optional dropdown, which stands
// for "not mapped" rather than for a value.
func choiceValues(p property) []string {
	var vs []string
	for _, c := range p.Choices {
		if c.Value == "" && p.Optional {
			continue
		}
		vs = append(vs, c.Value)
	}
	return sorted(vs)
}

// value decodes a property's default; nil when it has none (or "").
func value(t *testing.T, p property) any {
	t.Helper()
	if len(p.Value) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(p.Value, &v); err != nil {
		t.Fatalf("%s: value: %v", p.ID, err)
	}
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	return v
}

// sameDefault compares a template value with a Go default: numbers are JSON
// float64 on one side and any integer type on the other.
func sameDefault(tv, def any) bool {
	if tv == nil || def == nil {
		return tv == nil && def == nil
	}
	if f, ok := tv.(float64); ok {
		return fmt.Sprint(f) == fmt.Sprint(def)
	}
	return reflect.DeepEqual(tv, def)
}

func TestTemplateFixedParts(t *testing.T) {
	tpl := load(t)
	if tpl.ID != "io.github.o365-mail-connector.v1" || tpl.Version < 1 {
		t.Errorf("id/version = %q/%d", tpl.ID, tpl.Version)
	}
	want := map[string]string{
		"zeebe:taskDefinition/type":     "o365-mail:1",
		"zeebe:taskDefinition/retries":  "3",
		"zeebe:taskHeader/retryBackoff": "PT30S",
	}
	headers := map[string]bool{}
	ids := map[string]bool{}
	for _, p := range tpl.Properties {
		if p.ID != "" {
			if ids[p.ID] {
				t.Errorf("duplicate property id %q", p.ID)
			}
			ids[p.ID] = true
		}
		var key string
		switch p.Binding.Type {
		case "zeebe:taskDefinition":
			key = p.Binding.Type + "/" + p.Binding.Property
		case "zeebe:taskHeader":
			key = p.Binding.Type + "/" + p.Binding.Key
			headers[p.Binding.Key] = true
		default:
			continue
		}
		if w, ok := want[key]; ok {
			var got string
			_ = json.Unmarshal(p.Value, &got)
			if got != w {
				t.Errorf("%s = %q, want %q", key, got, w)
			}
			delete(want, key)
		}
	}
	for k := range want {
		t.Errorf("missing %s", k)
	}
	for _, h := range []string{"resultVariable", "resultExpression", "errorExpression", "retryBackoff"} {
		if !headers[h] {
			t.Errorf("missing task header %q", h)
		}
	}
	// Conditions must point at properties that exist, or the Modeler hides the field for good.
	for _, p := range tpl.Properties {
		if p.Condition != nil && !ids[p.Condition.Property] {
			t.Errorf("%s: condition on unknown property %q", p.ID, p.Condition.Property)
		}
	}
}

// TestAuthenticationBindings checks the authentication.* inputs against the
// json tags of auth.Input: a renamed tag or a new field breaks the build here
// instead of silently dropping a credential.
func TestAuthenticationBindings(t *testing.T) {
	tpl := load(t)
	byName := inputs(tpl)

	tags := map[string]bool{}
	rt := reflect.TypeOf(auth.Input{})
	for i := 0; i < rt.NumField(); i++ {
		tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if tag != "" && tag != "-" {
			tags[tag] = true
		}
	}
	if len(tags) == 0 {
		t.Fatal("auth.Input has no json tags")
	}

	seen := map[string]bool{}
	for name := range byName {
		field, ok := strings.CutPrefix(name, "authentication.")
		if !ok {
			continue
		}
		if !tags[field] {
			t.Errorf("binding %q: auth.Input has no field with json tag %q", name, field)
		}
		seen[field] = true
	}
	for tag := range tags {
		if !seen[tag] {
			t.Errorf("auth.Input field %q has no authentication.%s binding", tag, tag)
		}
	}

	typeProp := byName["authentication.type"]
	if len(typeProp) != 1 || typeProp[0].Type != "Dropdown" || typeProp[0].Condition != nil {
		t.Fatalf("authentication.type: want one unconditional dropdown, got %+v", typeProp)
	}
	wantTypes := sorted([]string{auth.TypeBearer, auth.TypeClientCredentials, auth.TypeRefreshToken})
	if got := choiceValues(typeProp[0]); !slices.Equal(got, wantTypes) {
		t.Errorf("authentication.type choices = %v, want %v", got, wantTypes)
	}
	for _, p := range byName["authentication.clientAuthentication"] {
		want := sorted([]string{auth.ClientAuthBody, auth.ClientAuthHeader})
		if got := choiceValues(p); !slices.Equal(got, want) {
			t.Errorf("%s choices = %v, want %v", p.ID, got, want)
		}
		if v := value(t, p); v != auth.ClientAuthBody {
			t.Errorf("%s default = %v, want %q", p.ID, v, auth.ClientAuthBody)
		}
	}
	for _, p := range byName["authentication.scopes"] {
		if v := value(t, p); v != auth.DefaultScopes {
			t.Errorf("%s default = %v, want %q", p.ID, v, auth.DefaultScopes)
		}
	}

	// Every other authentication field is shown for some types only, and one
	// binding name must not be shown twice for the same type (the Modeler
	// would write two mappings to one target).
	perType := map[string]map[string]string{}
	for name, props := range byName {
		if !strings.HasPrefix(name, "authentication.") || name == "authentication.type" {
			continue
		}
		for _, p := range props {
			if p.Condition == nil || p.Condition.Property != "authentication.type" || len(p.Condition.values()) == 0 {
				t.Errorf("%s: want a condition on authentication.type", p.ID)
				continue
			}
			for _, v := range p.Condition.values() {
				if !slices.Contains(wantTypes, v) {
					t.Errorf("%s: condition names unknown type %q", p.ID, v)
				}
				if perType[v] == nil {
					perType[v] = map[string]string{}
				}
				if other, dup := perType[v][name]; dup {
					t.Errorf("%s and %s both bind %s for type %s", other, p.ID, name, v)
				}
				perType[v][name] = p.ID
			}
		}
	}
}

// TestOperationBindings checks every other zeebe:input against
// operations.Describe(): each binding is a field the worker reads, each field
// has a binding, dropdowns offer exactly the accepted values, defaults agree,
// and each binding is shown for exactly the operations that read it.
func TestOperationBindings(t *testing.T) {
	tpl := load(t)
	byName := inputs(tpl)
	fields := operations.Describe()
	allOps := sorted(operations.Types())

	byPath := map[string]operations.Field{}
	for _, f := range fields {
		if _, dup := byPath[f.Path]; dup {
			t.Errorf("Describe lists %q twice", f.Path)
		}
		byPath[f.Path] = f
	}
	if _, ok := byPath["operation.type"]; !ok {
		t.Fatal("Describe has no operation.type")
	}

	for name, props := range byName {
		if strings.HasPrefix(name, "authentication.") {
			continue
		}
		if _, ok := byPath[name]; !ok {
			t.Errorf("binding %q (%s) is read by no operation", name, props[0].ID)
		}
	}

	for _, f := range fields {
		props := byName[f.Path]
		if len(props) != 1 {
			t.Errorf("field %s: want exactly one template property, got %d", f.Path, len(props))
			continue
		}
		p := props[0]
		checkCondition(t, p, f, allOps)
		checkType(t, p, f)
		checkChoices(t, p, f)
		checkDefault(t, p, f)
		checkRequired(t, p, f)
	}
}

func checkCondition(t *testing.T, p property, f operations.Field, allOps []string) {
	t.Helper()
	ops := sorted(f.Operations)
	for _, op := range ops {
		if !slices.Contains(allOps, op) {
			t.Errorf("%s: Describe names unknown operation %q", f.Path, op)
		}
	}
	if p.Condition == nil {
		if f.Path != "operation.type" && !slices.Equal(ops, allOps) {
			t.Errorf("%s: shown for every operation, but only %v read it", p.ID, ops)
		}
		return
	}
	if f.Path == "operation.type" {
		t.Errorf("%s: the operation selector must not be conditional", p.ID)
		return
	}
	if p.Condition.Property != "operation.type" || len(p.Condition.AllMatch) > 0 {
		t.Errorf("%s: want a simple condition on operation.type, got %+v", p.ID, *p.Condition)
		return
	}
	if got := sorted(p.Condition.values()); !slices.Equal(got, ops) {
		t.Errorf("%s: shown for %v, read by %v", p.ID, got, ops)
	}
}

// checkType makes sure the value reaches the worker with the JSON type it
// decodes: booleans and numbers as static FEEL, lists and contexts as FEEL.
func checkType(t *testing.T, p property, f operations.Field) {
	t.Helper()
	ok := false
	switch f.Type {
	case "string":
		ok = (p.Type == "String" || p.Type == "Text" || p.Type == "Dropdown") && p.Feel != "required"
	case "boolean":
		ok = p.Type == "Boolean" && p.Feel == "static"
	case "integer":
		ok = p.Type == "Number" && p.Feel == "static"
	case "list", "context":
		ok = (p.Type == "String" || p.Type == "Text") && p.Feel == "required"
	default:
		t.Errorf("%s: Describe gives unknown type %q", f.Path, f.Type)
		return
	}
	if !ok {
		t.Errorf("%s: template type %s (feel %q) does not deliver a %s", p.ID, p.Type, p.Feel, f.Type)
	}
}

func checkChoices(t *testing.T, p property, f operations.Field) {
	t.Helper()
	if len(f.Values) > 0 && p.Type != "Dropdown" {
		t.Errorf("%s: enumeration %v should be a dropdown, is %s", p.ID, f.Values, p.Type)
		return
	}
	if p.Type != "Dropdown" {
		return
	}
	if want := sorted(f.Values); !slices.Equal(choiceValues(p), want) {
		t.Errorf("%s: choices %v, accepted values %v", p.ID, choiceValues(p), want)
	}
	if len(p.Choices) != len(choiceValues(p)) && !p.Optional {
		t.Errorf("%s: an empty choice only makes sense on an optional dropdown", p.ID)
	}
}

func checkDefault(t *testing.T, p property, f operations.Field) {
	t.Helper()
	tv := value(t, p)
	if f.Default == nil && tv != nil && f.Required && p.Type == "Dropdown" {
		// A required enumeration needs a preselected choice in the Modeler;
		// it must at least be one the worker accepts (checked above).
		return
	}
	if !sameDefault(tv, f.Default) {
		t.Errorf("%s: template default %v (%T), worker default %v (%T)", p.ID, tv, tv, f.Default, f.Default)
	}
}

func checkRequired(t *testing.T, p property, f operations.Field) {
	t.Helper()
	if f.Required {
		if p.Optional {
			t.Errorf("%s: required by the worker but optional in the template", p.ID)
		}
		if !p.Constraints.NotEmpty && p.Type != "Dropdown" && p.Type != "Boolean" {
			t.Errorf("%s: required by the worker; the template should insist (constraints.notEmpty)", p.ID)
		}
		return
	}
	// An optional field without a default must be optional in the template,
	// or an empty field would be mapped as "" and rejected or misread.
	if !p.Optional && value(t, p) == nil {
		t.Errorf("%s: optional for the worker; mark it optional or give it the worker's default", p.ID)
	}
	if p.Constraints.NotEmpty {
		t.Errorf("%s: optional for the worker but notEmpty in the template", p.ID)
	}
}

// bpmnTask is a task of an example diagram, as far as the template fills it.
type bpmnTask struct {
	ID               string `xml:"id,attr"`
	ModelerTemplate  string `xml:"http://camunda.org/schema/zeebe/1.0 modelerTemplate,attr"`
	ModelerTemplateV string `xml:"http://camunda.org/schema/zeebe/1.0 modelerTemplateVersion,attr"`
	Ext              struct {
		TaskDefinition struct {
			Type    string `xml:"type,attr"`
			Retries string `xml:"retries,attr"`
		} `xml:"http://camunda.org/schema/zeebe/1.0 taskDefinition"`
		Inputs []struct {
			Source string `xml:"source,attr"`
			Target string `xml:"target,attr"`
		} `xml:"http://camunda.org/schema/zeebe/1.0 ioMapping>input"`
		Headers []struct {
			Key   string `xml:"key,attr"`
			Value string `xml:"value,attr"`
		} `xml:"http://camunda.org/schema/zeebe/1.0 taskHeaders>header"`
	} `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL extensionElements"`
}

type bpmnDefinitions struct {
	Processes []struct {
		ServiceTasks []bpmnTask `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL serviceTask"`
		SendTasks    []bpmnTask `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL sendTask"`
	} `xml:"http://www.omg.org/spec/BPMN/20100524/MODEL process"`
}

// TestExamplesUseTheTemplate checks that the example diagrams carry what the
// current template would write: its id and version, its task type, only its
// input targets and headers, and dropdown values it offers.
func TestExamplesUseTheTemplate(t *testing.T) {
	tpl := load(t)
	byName := inputs(tpl)
	headers := map[string]bool{}
	for _, p := range tpl.Properties {
		if p.Binding.Type == "zeebe:taskHeader" {
			headers[p.Binding.Key] = true
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.bpmn"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var defs bpmnDefinitions
		if err := xml.Unmarshal(raw, &defs); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		n := 0
		for _, proc := range defs.Processes {
			for _, task := range append(slices.Clone(proc.ServiceTasks), proc.SendTasks...) {
				if task.ModelerTemplate == "" {
					continue
				}
				n++
				checkExampleTask(t, file, task, tpl, byName, headers)
			}
		}
		if n == 0 {
			t.Errorf("%s: no task uses the template", file)
		}
	}
}

func checkExampleTask(t *testing.T, file string, task bpmnTask, tpl template, byName map[string][]property, headers map[string]bool) {
	t.Helper()
	where := file + "#" + task.ID
	if task.ModelerTemplate != tpl.ID || task.ModelerTemplateV != fmt.Sprint(tpl.Version) {
		t.Errorf("%s: template %s v%s, want %s v%d", where, task.ModelerTemplate, task.ModelerTemplateV, tpl.ID, tpl.Version)
	}
	if task.Ext.TaskDefinition.Type != "o365-mail:1" {
		t.Errorf("%s: task type %q", where, task.Ext.TaskDefinition.Type)
	}
	targets := map[string]string{}
	for _, in := range task.Ext.Inputs {
		if _, dup := targets[in.Target]; dup {
			t.Errorf("%s: two mappings to %s", where, in.Target)
		}
		targets[in.Target] = in.Source
	}
	for target, source := range targets {
		props, ok := byName[target]
		if !ok {
			t.Errorf("%s: input %s is no template field", where, target)
			continue
		}
		// Of properties sharing a binding, the one whose condition holds is
		// the one the Modeler would have written.
		var p *property
		for i := range props {
			c := props[i].Condition
			if c == nil || slices.Contains(c.values(), targets[c.Property]) {
				if p != nil {
					t.Errorf("%s: %s matches two template properties", where, target)
				}
				p = &props[i]
			}
		}
		if p == nil {
			t.Errorf("%s: %s is hidden by its condition for this task", where, target)
			continue
		}
		if p.Type == "Dropdown" && !slices.ContainsFunc(p.Choices, func(c choice) bool { return c.Value == source }) {
			t.Errorf("%s: %s = %q is not one of the template's choices", where, target, source)
		}
		if (p.Feel == "required" || p.Feel == "static") && !strings.HasPrefix(source, "=") {
			t.Errorf("%s: %s must be a FEEL expression, got %q", where, target, source)
		}
	}
	for _, p := range tpl.Properties {
		if p.Binding.Type != "zeebe:input" || p.Optional || p.Type == "Hidden" {
			continue
		}
		c := p.Condition
		if c != nil && !slices.Contains(c.values(), targets[c.Property]) {
			continue
		}
		if _, ok := targets[p.Binding.Name]; !ok {
			t.Errorf("%s: visible non-optional field %s (%s) is not mapped", where, p.ID, p.Binding.Name)
		}
	}
	for _, h := range task.Ext.Headers {
		if !headers[h.Key] {
			t.Errorf("%s: header %s is no template field", where, h.Key)
		}
	}
}
