// Package examples holds the example BPMN processes (*.bpmn) and their
// README. It has no code of its own: its test reads the models, builds the
// job variables their input mappings produce as Zeebe would, and runs the
// jobs through the real worker against the simulators, so that a model that
// no longer matches the connector fails the build.
package examples
