// The official `openai` SDK against voiceagent-emulator's Chat Completions
// service: every call below must give the SDK exactly what it expects from
// OpenAI. Run by control-sdk-runner.sh (EMULATOR_URL, EMULATOR_OPENAI_KEY).
// SPDX-License-Identifier: LGPL-2.1-or-later
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.EMULATOR_URL;
const key = process.env.EMULATOR_OPENAI_KEY;
const client = new OpenAI({ apiKey: key, baseURL: `${base}/v1` });

async function control(path, body) {
  const res = await fetch(`${base}${path}`, body === undefined ? {} : {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

async function events(name) {
  const r = await control(`/emulator/events?service=llm&event=${name}`);
  return r.events;
}

test('models.list returns OpenAI model objects', async () => {
  await control('/emulator/reset', {});
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes('gpt-4o-mini'));
});

test('a plain completion answers the user and reports usage', async () => {
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are a voice agent.' },
      { role: 'user', content: 'Hello there' },
    ],
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, 'gpt-4o-mini');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.match(r.choices[0].message.content, /Hello/);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('a stream has the role first, content deltas, finish_reason, usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'tell me about the weather' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.ok(chunks.length >= 4);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
  const finish = chunks[chunks.length - 2];
  assert.equal(finish.choices[0].finish_reason, 'stop');
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.match(text, /weather/);
});

test('the streaming helper assembles the same message', async () => {
  const runner = client.chat.completions.stream({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'thank you' }],
  });
  const final = await runner.finalChatCompletion();
  assert.match(final.choices[0].message.content, /welcome/);
});

test('a wrong key is AuthenticationError with code invalid_api_key', async () => {
  const bad = new OpenAI({ apiKey: 'sk-wrong-key-1234', baseURL: `${base}/v1`, maxRetries: 0 });
  await assert.rejects(
    bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key',
  );
});

test('503 with Retry-After is retried by the SDK and then succeeds', async () => {
  await control('/emulator/reset', {});
  await control('/emulator/faults', { service: 'llm', fault: 'http:503:retry=1', count: 1 });
  const t0 = Date.now();
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hello' }],
  });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(Date.now() - t0 >= 900, 'the SDK waited for Retry-After');
  assert.equal((await events('fault-applied')).length, 1);
});

test('429 without retries is RateLimitError carrying Retry-After', async () => {
  await control('/emulator/faults', { service: 'llm', fault: 'http:429:retry=7', count: 1 });
  const once = new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0 });
  await assert.rejects(
    once.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '7',
  );
});

test('aborting a stream is recorded by the emulator', async () => {
  await control('/emulator/reset', {});
  await control('/emulator/faults', { service: 'llm', fault: 'slow:10', count: 1 });
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'please tell me a rather long story about many things' }],
    stream: true,
  });
  let n = 0;
  for await (const c of stream) {
    if (c.choices[0]?.delta?.content && ++n === 2) {
      stream.controller.abort();
      break;
    }
  }
  let aborted = [];
  for (let i = 0; i < 50 && aborted.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    aborted = await events('llm-aborted');
  }
  assert.equal(aborted.length, 1);
  assert.match(aborted[0].detail, /^chatcmpl-/);
});

// Tool calls: the SDK assembles the streamed tool_calls deltas itself.
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_order_status',
      description: 'Look up an order.',
      parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    },
  },
  {
    type: 'function',
    function: { name: 'end_call', description: 'Hang up.', parameters: { type: 'object', properties: {} } },
  },
];

test('a streamed tool call is assembled by the SDK, and its result answered', async () => {
  const messages = [{ role: 'user', content: 'Where is order 1234?' }];
  const runner = client.chat.completions.stream({
    model: 'gpt-4o-mini', messages, tools, stream_options: { include_usage: true },
  });
  const done = [];
  runner.on('tool_calls.function.arguments.done', (e) => done.push(e));
  const final = await runner.finalChatCompletion();
  const choice = final.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_order_status');
  assert.deepEqual(JSON.parse(call.function.arguments), { order_id: '1234' });
  assert.equal(done.length, 1);
  assert.equal(done[0].name, 'get_order_status');
  assert.ok(final.usage.completion_tokens >= 3);

  // The result goes back as a tool message; the answer speaks it.
  messages.push(choice.message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ status: 'shipped' }) });
  const answer = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools, stream: true });
  let text = '';
  let finish = null;
  for await (const c of answer) {
    text += c.choices[0]?.delta?.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'Order 1234 is shipped.');
  assert.equal(finish, 'stop');
});

test('text then a tool call in one streamed reply (goodbye, end_call)', async () => {
  const final = await client.chat.completions.stream({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'thanks, goodbye' }], tools,
  }).finalChatCompletion();
  const m = final.choices[0].message;
  assert.equal(m.content, 'Goodbye, thanks for calling!');
  assert.equal(m.tool_calls[0].function.name, 'end_call');
  assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), {});
});

test('runTools runs the function the emulator calls and speaks its result', async () => {
  const seen = [];
  const runner = client.chat.completions.runTools({
    model: 'gpt-4o-mini',
    stream: true,
    messages: [{ role: 'user', content: 'what about order number 77' }],
    tools: [{
      type: 'function',
      function: {
        name: 'get_order_status',
        parameters: { type: 'object', properties: { order_id: { type: 'string' } } },
        parse: JSON.parse,
        function: (args) => { seen.push(args); return { status: 'out for delivery' }; },
      },
    }],
  });
  const content = await runner.finalContent();
  assert.deepEqual(seen, [{ order_id: '77' }]);
  assert.equal(content, 'Order 77 is out for delivery.');
});

test('tool_choice none and unoffered tools give text, never tool calls', async () => {
  const none = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'order 5' }], tools, tool_choice: 'none',
  });
  assert.equal(none.choices[0].finish_reason, 'stop');
  assert.equal(none.choices[0].message.tool_calls, undefined);
  const other = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'order 5' }], tools: [tools[1]],
  });
  assert.equal(other.choices[0].finish_reason, 'stop');
  assert.match(other.choices[0].message.content, /order 5/);
});
