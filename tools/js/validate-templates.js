// Validates every element template in ../../element-templates against the
// Zeebe element template JSON schema, so that a template the Modeler would
// reject (or silently mis-render) fails CI instead of a user's import.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { validateZeebe } = require('@bpmn-io/element-templates-validator');

// Arguments name template files; without any, every JSON file of the
// element-templates directory is checked.
const args = process.argv.slice(2);
const dir = path.resolve(__dirname, '..', '..', 'element-templates');
const files = args.length
  ? args.map((f) => path.resolve(f))
  : fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f));

if (files.length === 0) {
  console.error(`no element templates found in ${dir}`);
  process.exit(1);
}

// Camunda 8.8 deprecates `optional` on zeebe:input in favour of empty
// mappings, but 8.5-8.7 engines map an empty field to null only with it, and
// the template targets ^8.5: count these instead of printing each one.
const OPTIONAL_DEPRECATION = /'optional' with 'zeebe:input' binding is deprecated/;

let failed = 0;
for (const abs of files) {
  const file = path.relative(process.cwd(), abs);
  const text = fs.readFileSync(abs, 'utf8');
  let result;
  try {
    // Passing the text keeps line numbers in the error pointers.
    result = validateZeebe(text);
  } catch (err) {
    failed++;
    console.error(`${file}: cannot validate: ${err.message}`);
    continue;
  }
  let optionalInputs = 0;
  for (const w of result.warnings || []) {
    if (OPTIONAL_DEPRECATION.test(w.message)) {
      optionalInputs++;
      continue;
    }
    console.warn(`${file}: warning: ${where(w)}${w.message}`);
  }
  if (optionalInputs) {
    console.log(`${file}: note: ${optionalInputs} optional zeebe:input properties (deprecated from Camunda 8.8 only)`);
  }
  if (result.valid) {
    console.log(`${file}: ok`);
    continue;
  }
  failed++;
  for (const e of result.errors) {
    console.error(`${file}: error: ${where(e)}${e.message}${params(e)}`);
  }
}

function where(e) {
  const p = e.dataPointer && e.dataPointer.value;
  const loc = p ? `line ${p.line + 1}: ` : '';
  return `${loc}${e.instancePath || e.dataPath || ''} `;
}

function params(e) {
  // rawErrors repeats what the message already says.
  const { rawErrors, ...rest } = e.params || {};
  return Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
}

console.log(`${files.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
