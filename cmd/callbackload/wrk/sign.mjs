// Re-signs a replay file (written by `go run ./cmd/callbackload -replay-out FILE`) with
// Twilio's official Node helper library, so that wrk replays callbacks signed exactly as the
// library signs them rather than as our own code does:
//
//   npm install --prefix cmd/callbackload/wrk
//   node cmd/callbackload/wrk/sign.mjs AUTH_TOKEN PUBLIC_URL FILE
//
// Each line is path and query, tab, signature, tab, form body; the signature is replaced by
// twilio.getExpectedTwilioSignature(token, PUBLIC_URL + path, params). It prints how many
// signatures differed from the ones in the file (our signer's): 0 is expected.
import { readFileSync, writeFileSync } from "node:fs";
import twilio from "twilio";

const [token, base, file] = process.argv.slice(2);
if (!token || !base || !file) {
  console.error("usage: node sign.mjs AUTH_TOKEN PUBLIC_URL FILE");
  process.exit(2);
}
const lines = readFileSync(file, "utf8").split("\n");
let signed = 0;
let differed = 0;
const out = lines.map((line) => {
  if (line === "") return line;
  const [path, sig, body] = line.split("\t");
  const params = {};
  for (const [k, v] of new URLSearchParams(body)) params[k] = v;
  const official = twilio.getExpectedTwilioSignature(token, base.replace(/\/+$/, "") + path, params);
  signed++;
  if (official !== sig) differed++;
  return `${path}\t${official}\t${body}`;
});
writeFileSync(file, out.join("\n"));
console.log(`signed ${signed} callbacks with twilio-node; ${differed} differed from callbackload's own signatures`);
