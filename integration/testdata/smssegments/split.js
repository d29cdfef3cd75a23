// split.js: grapheme-splitter 1.0.4, the segmenter of Twilio's calculator,
// as an oracle. Reads one JSON string per line on stdin and writes, per
// string, the lengths in UTF-16 code units of its grapheme clusters,
// comma-separated (an empty line for an empty string).
'use strict';
const readline = require('readline');
const GraphemeSplitter = require('grapheme-splitter');

const splitter = new GraphemeSplitter();
const out = [];
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line === '') return;
  out.push(splitter.splitGraphemes(JSON.parse(line)).map((g) => g.length).join(','));
});
rl.on('close', () => {
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
});
