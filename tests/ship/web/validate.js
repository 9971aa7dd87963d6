// Khronos glTF Validator on one file: node validate.js model.glb  ->  the validation report as JSON.
'use strict';
const fs = require('fs');
const path = require('path');
const validator = require('gltf-validator');

const file = process.argv[2];
const bytes = new Uint8Array(fs.readFileSync(file));
validator.validateBytes(bytes, {
  uri: path.basename(file),
  maxIssues: 0,
  externalResourceFunction: (uri) => new Promise((resolve, reject) => {
    fs.readFile(path.join(path.dirname(file), decodeURIComponent(uri)), (err, data) => (err ? reject(err) : resolve(new Uint8Array(data))));
  }),
}).then((result) => {
  process.stdout.write(JSON.stringify(result));
}).catch((err) => {
  process.stderr.write(`validator failed: ${err}\n`);
  process.exit(1);
});
