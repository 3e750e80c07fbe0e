// BERT's WordPiece tokenizer, read from a `tokenizers` library tokenizer.json with a
// BertNormalizer, a BertPreTokenizer and a WordPiece model (bert-base-uncased and the
// sentence-transformers MiniLM models use one): clean the text, put spaces around CJK
// characters, strip accents and lowercase, split on whitespace and around each punctuation
// character, then take the longest vocabulary entry first (`##` for a word's continuation,
// [UNK] for a word that cannot be split or is over 100 characters), between [CLS] and [SEP].
//
//   node scripts/client/wordpiece.mjs --check offchain-worker/tests/encoder-reference.json
// compares its ids with those the reference file holds (made with the tokenizers library).
import { readFileSync } from 'node:fs';

const CJK = [[0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f], [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f]];
const isCjk = (cp) => CJK.some(([lo, hi]) => cp >= lo && cp <= hi);
const isWhitespace = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || /\p{Zs}/u.test(c);
const isControl = (c) => c !== '\t' && c !== '\n' && c !== '\r' && /\p{C}/u.test(c);
const isPunctuation = (c) => /[!-/:-@[-`{-~]/.test(c) || /\p{P}/u.test(c);

export function loadWordPiece(path) {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  const { normalizer: norm, pre_tokenizer: pre, model } = json;
  if (norm?.type !== 'BertNormalizer' || pre?.type !== 'BertPreTokenizer' || model?.type !== 'WordPiece') {
    throw new Error(`${path}: not a BERT WordPiece tokenizer`);
  }
  const vocab = new Map(Object.entries(model.vocab));
  const id = (token) => {
    const v = vocab.get(token);
    if (v === undefined) throw new Error(`${path}: no ${token} in the vocabulary`);
    return v;
  };
  const [cls, sep, unk] = [id('[CLS]'), id('[SEP]'), id(model.unk_token)];
  const lowercase = norm.lowercase;
  const stripAccents = norm.strip_accents ?? lowercase;
  const maxChars = model.max_input_chars_per_word ?? 100;
  const prefix = model.continuing_subword_prefix ?? '##';

  const normalize = (text) => {
    let out = '';
    for (const c of text) {
      const cp = c.codePointAt(0);
      if (norm.clean_text && (cp === 0 || cp === 0xfffd || isControl(c))) continue;
      if (norm.clean_text && isWhitespace(c)) out += ' ';
      else if (norm.handle_chinese_chars && isCjk(cp)) out += ` ${c} `;
      else out += c;
    }
    if (stripAccents) out = out.normalize('NFD').replace(/\p{Mn}/gu, '');
    return lowercase ? out.toLowerCase() : out;
  };

  const words = (text) => {
    const out = [];
    let word = '';
    for (const c of text) {
      if (isWhitespace(c) || isPunctuation(c)) {
        if (word) out.push(word);
        word = '';
        if (isPunctuation(c)) out.push(c);
      } else {
        word += c;
      }
    }
    if (word) out.push(word);
    return out;
  };

  const pieces = (word) => {
    const chars = [...word];
    if (chars.length > maxChars) return [unk];
    const ids = [];
    for (let start = 0; start < chars.length;) {
      let end = chars.length;
      let found;
      for (; end > start; end--) {
        const piece = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
        found = vocab.get(piece);
        if (found !== undefined) break;
      }
      if (found === undefined) return [unk];
      ids.push(found);
      start = end;
    }
    return ids;
  };

  return {
    /** The ids of `text`, between [CLS] and [SEP]. */
    encode: (text) => [cls, ...words(normalize(text)).flatMap(pieces), sep],
  };
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === '--check') {
  const reference = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  const home = process.env.HOME ?? '';
  const tok = loadWordPiece(process.argv[4] ?? `${home}/.cache/opg/models/bert-base-uncased.tokenizer.json`);
  let n = 0;
  for (const c of reference.cases.filter((c) => c.texts.length === 1)) {
    const got = tok.encode(c.texts[0]);
    const want = c.input_ids[0];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      console.error(`"${c.texts[0]}": got ${got}, want ${want}`);
      process.exit(1);
    }
    n++;
  }
  console.log(`wordpiece: the ids of ${n} texts match the tokenizers library's`);
}
