// segments.js: Twilio's SMS segment calculator (npm sms-segments-calculator,
// github.com/TwilioDevEd/message-segment-calculator) as an oracle. Reads one
// JSON string (a message body) per line on stdin and writes, per body, one
// line "<segments> <encoding>" as the calculator counts it: encoding auto,
// Smart Encoding off (Twilio's default, and what Keybrake prices).
'use strict';
const readline = require('readline');
const { SegmentedMessage } = require('sms-segments-calculator');

const out = [];
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line === '') return;
  const m = new SegmentedMessage(JSON.parse(line), 'auto', false);
  out.push(m.segmentsCount + ' ' + m.encodingName);
});
rl.on('close', () => {
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
});
