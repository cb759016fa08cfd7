#!/usr/bin/env bash
# Qwen2.5-Coder-0.5B with the full cache on planted facts at 8k and 16k tokens (commands and answers logged).
set -u
mkdir -p runs/acceptance
TS=.venv/bin/tokensieve
M=qwen2.5-coder-0.5b
for spec in "8192 niah_single_number 1" "16384 niah_single_number 2" "16384 qa 3"; do
  set -- $spec
  f=runs/acceptance/ctx-$2-$1-s$3.txt
  meta=$($TS ruler-case --model $M --task $2 --tokens $1 --seed $3 --out $f 2>/dev/null)
  q=$(echo "$meta" | .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['question'])")
  p=$(echo "$meta" | .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['answer_prefix'])")
  e=$(echo "$meta" | .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['expected'])")
  echo "\$ tokensieve ruler-case --model $M --task $2 --tokens $1 --seed $3 --out $f"
  echo "\$ tokensieve generate -m $M -c $f -q \"$q\" --answer-prefix \"$p\" --policy full --budget 1 --max-new-tokens 16 --json"
  echo "expected: $e"
  /usr/bin/time -f "wall %e s, max RSS %M KB" $TS generate -m $M -c $f -q "$q" --answer-prefix "$p" --policy full --budget 1 --max-new-tokens 16 --json 2>&1 | grep -v Warn | .venv/bin/python -c "
import json,sys
text=sys.stdin.read(); start=text.find('{'); end=text.rfind('}')
d=json.loads(text[start:end+1]); s=d['stats']
print('answer:', repr(d['answer']), '| prompt_tokens', s['prompt_tokens'], '| prefill_s', s['prefill_s'], '| decode tok/s', s['decode_tok_s'], '| peak RSS MB', s['peak_rss_mb'])
print(text[end+1:].strip())"
  echo
done
