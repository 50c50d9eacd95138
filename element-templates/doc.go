// Package elementtemplates holds the Camunda element template of the
// connector (o365-mail-connector.json). Its tests keep the template in step
// with the worker: every input binding against operations.Describe and the
// json tags of auth.Input, and the example diagrams against the template.
package elementtemplates
