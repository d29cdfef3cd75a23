// graphemetable.js prints the grapheme break property table of
// grapheme-splitter 1.0.4 (the segmenter Twilio's calculator uses, UAX #29
// as of Unicode 10) as "start end property" lines, one per run of code
// points with the same property other than Other. Keybrake's Go port
// (internal/smsgraphemes) holds the same table; the integration test
// compares them.
'use strict';
const fs = require('fs');
const src = fs.readFileSync(require.resolve('grapheme-splitter'), 'utf8')
  .replace('this.countGraphemes = function', 'this.property = getGraphemeBreakProperty;\n\tthis.countGraphemes = function');
const m = { exports: {} };
new Function('module', src)(m);
const property = new m.exports().property;
const names = ['CR', 'LF', 'Control', 'Extend', 'Regional_Indicator', 'SpacingMark', 'L', 'V', 'T', 'LV', 'LVT',
  'Other', 'Prepend', 'E_Base', 'E_Modifier', 'ZWJ', 'Glue_After_Zwj', 'E_Base_GAZ'];
const lines = [];
let start = 0;
let cur = property(0);
for (let cp = 1; cp <= 0x110000; cp++) {
  const p = cp <= 0x10ffff ? property(cp) : -1;
  if (p !== cur) {
    if (names[cur] !== 'Other') lines.push(start.toString(16) + ' ' + (cp - 1).toString(16) + ' ' + names[cur]);
    start = cp;
    cur = p;
  }
}
process.stdout.write(lines.join('\n') + '\n');
