// `steper serve` driven by the official openai npm SDK, as a user's Node
// program would: models.list/retrieve, completions with echo and logprobs,
// chat with content parts, both kinds of stream with include_usage, and an
// error. The model is one the test trains itself (a few steps: its text is
// nonsense, its API is not). Also: a second server on the same port stops.
//   node openai_sdk_test.mjs STEPER
import {execFileSync, spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import OpenAI from 'openai';

const [steper] = process.argv.slice(2);
if (!steper) throw new Error('usage: node openai_sdk_test.mjs STEPER');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'steper-sdk-'));
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGINT');
  fs.rmSync(work, {recursive: true, force: true});
});

let failures = 0;
function check(ok, what, detail = '') {
  if (ok) console.log(`ok   ${what}`);
  else {
    failures++;
    console.log(`FAIL ${what} ${detail}`);
  }
}

const run = (...args) => execFileSync(steper, ['-q', ...args], {stdio: ['ignore', 'pipe', 'pipe']}).toString();
run('world', '--seed', '3', '--questions', '60', '--out', path.join(work, 'world'));
run('tokenizer', 'train', '--corpus', path.join(work, 'world/corpus.jsonl'), '--vocab-size', '500', '--out', path.join(work, 'tok'));
run('pretrain', '--data', path.join(work, 'world/corpus.jsonl'), '--tokenizer', path.join(work, 'tok'), '--out', path.join(work, 'lm'),
    '--dim', '32', '--layers', '1', '--heads', '2', '--seq-len', '64', '--batch', '4', '--steps', '3');
const model = path.join(work, 'lm');

// Starts `steper serve`; resolves with the port it prints, or the exit code.
function serve(port) {
  const child = spawn(steper, ['serve', '--model', model, '--port', String(port), '--no-access-log'], {stdio: ['ignore', 'pipe', 'pipe']});
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => {
    readline.createInterface({input: child.stdout}).on('line', (line) => {
      const m = line.match(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
      if (m) resolve({port: Number(m[1]), child});
    });
    child.on('exit', (code) => resolve({code, stderr}));
  });
}

const first = await serve(0);
check(first.port > 0, 'steper serve started', JSON.stringify(first));
const second = await serve(first.port);
check(second.code === 1 && /in use/.test(second.stderr), 'a second server on the same port stops with "in use"',
      JSON.stringify(second));

const client = new OpenAI({baseURL: `http://127.0.0.1:${first.port}/v1`, apiKey: 'unused', maxRetries: 0});

const list = await client.models.list();
const name = list.data[0].id;
check(list.data.length === 1 && name === 'lm', 'models.list', JSON.stringify(list.data));
const one = await client.models.retrieve(name);
check(one.id === name && one.created > 1.7e9 && one.object === 'model', 'models.retrieve with created', JSON.stringify(one));

const prompt = 'Wikipedia Title: Soraia\nSoraia is a';
const echoed = await client.completions.create({model: name, prompt, max_tokens: 3, temperature: 0, echo: true, logprobs: 2});
const c0 = echoed.choices[0];
check(c0.text.startsWith(prompt), 'completions echo returns the prompt first', JSON.stringify(c0.text));
check(c0.logprobs.token_logprobs[0] === null && c0.logprobs.token_logprobs.slice(1).every((x) => x <= 0),
      'completions logprobs: null for the first token, then log-probabilities', JSON.stringify(c0.logprobs.token_logprobs));
check(c0.logprobs.tokens.length === c0.logprobs.top_logprobs.length && Object.keys(c0.logprobs.top_logprobs[1]).length >= 2,
      'completions top_logprobs: the token and 2 alternatives');
check(echoed.usage.completion_tokens > 0 && echoed.usage.completion_tokens <= 3 && echoed.usage.prompt_tokens > 0, 'completions usage',
      JSON.stringify(echoed.usage));

const chat = await client.chat.completions.create({
  model: name, max_tokens: 4, temperature: 0,
  messages: [{role: 'user', content: [{type: 'text', text: 'Wikipedia Title: Soraia'}, {type: 'text', text: 'Soraia is a'}]}],
});
const plain = await client.completions.create({model: name, prompt, max_tokens: 4, temperature: 0});
check(chat.choices[0].message.content === plain.choices[0].text, 'chat with content parts reads them as joined text',
      JSON.stringify([chat.choices[0].message.content, plain.choices[0].text]));

let text = '', usage = null;
for await (const chunk of await client.completions.create({model: name, prompt, max_tokens: 4, temperature: 0, stream: true,
                                                          stream_options: {include_usage: true}})) {
  if (chunk.choices.length) text += chunk.choices[0].text;
  if (chunk.usage) usage = chunk.usage;
}
check(text === plain.choices[0].text && usage && usage.completion_tokens === plain.usage.completion_tokens,
      'completions stream with include_usage',
      JSON.stringify({text, usage}));
text = '';
usage = null;
for await (const chunk of await client.chat.completions.create({model: name, max_tokens: 4, temperature: 0, stream: true,
                                                               stream_options: {include_usage: true},
                                                               messages: [{role: 'user', content: prompt}]})) {
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
check(text === plain.choices[0].text && usage && usage.prompt_tokens > 0, 'chat stream with include_usage',
      JSON.stringify({text, usage}));

const refused = await client.completions.create({model: name, prompt, presence_penalty: 0.5}).catch((e) => e);
check(refused instanceof OpenAI.BadRequestError && refused.status === 400 && /presence_penalty/.test(refused.message),
      'an unsupported setting is a BadRequestError naming it', String(refused));
const missing = await client.completions.create({model: 'gpt-9', prompt}).catch((e) => e);
check(missing instanceof OpenAI.NotFoundError, 'an unknown model is a NotFoundError', String(missing));

console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
