#!/bin/bash
# How benchmarks/README.md's GPU numbers are produced: TF 2.21 on a lent GPU machine that has no
# TensorFlow, reaches no package index and takes at most 64 MiB per call.
#
# Here (the development machine), once; .gpu/ is ignored (`echo /.gpu/ >> .git/info/exclude`):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d /tmp/gpu/whl tensorflow==2.21.0 nvidia-cuda-runtime-cu12==12.9.79
#   (same flags, -d .gpu/small) keras==3.15.1 namex==0.1.0 optree==0.20.0 ml_dtypes==0.6.0 \
#       protobuf==6.33.6 gast==0.7.0 astunparse==1.6.3 google-pasta==0.2.0 termcolor==3.3.0
#   mkdir /tmp/gpu/site && cd /tmp/gpu/site && unzip -q ../whl/tensorflow-*.whl && unzip -q ../whl/nvidia_cuda_runtime*.whl
#   rm -rf tensorflow/include && tar -cf - . | xz -T2 -6 > /tmp/gpu/tf.tar.xz          # 314 MiB, ~4 min
#   cd .gpu && split -b 62914560 -d -a 1 /tmp/gpu/tf.tar.xz tf.part. && sha256sum /tmp/gpu/tf.tar.xz | cut -c1-64 > tf.sha256
# On the device, calls in quick succession (the machine stays warm 30 s after each):
#   carry .gpu/tf.part.N, command `mkdir -p /tmp/tfparts && cp .gpu/tf.part.* /tmp/tfparts/`, N = 0..4;
#   then carry .gpu/tf.part.5 .gpu/small .gpu/tf.sha256, command `bash benchmarks/gpu_device_run.sh ""`
#   (each argument: one benchmark run's flags, "" for the defaults; SKIP_SMOKE=1 skips the smoke test,
#   BENCH_TIMEOUT=seconds bounds each benchmark run, default 330). On one H200 the five part calls
#   take about 51 s of device time with the machine's start, this script with `""` about 323 s
#   (give it `BENCH_TIMEOUT=500`). `"--compare_boundaries"` adds batches padded to fixed length boundaries.
#   XLA against the cuDNN LSTM (docs/training.md, "Devices, XLA and distribution"): `"" "--jit_compile
#   --use_cudnn=false"` (its `xla ...` line says whether the steps really compiled); scaling over a
#   machine's GPUs: `"--strategy=mirrored"` (one replica per GPU).
#
# TF 2.21 is built for CUDA 12.5 / cuDNN 9. CUDA 12's library wheels are ~2.4 GiB, so TF's CUDA 12
# library names are linked to the machine's CUDA 13 libraries: not a supported TF configuration.
set -u
LOG=${OUT:-/tmp}/log
exec > >(tee -a "$LOG") 2>&1
mkdir -p /tmp/tfparts
cp -n .gpu/tf.part.* /tmp/tfparts/ 2>/dev/null
ls -la /tmp/tfparts
if [ ! -f /tmp/site/.done ]; then
  rm -rf /tmp/site; mkdir -p /tmp/site
  got=$(cat /tmp/tfparts/tf.part.* | sha256sum | cut -c1-64)
  [ "$got" = "$(cat .gpu/tf.sha256)" ] || { echo "ARCHIVE SHA MISMATCH $got"; exit 3; }
  if command -v xz >/dev/null; then
    cat /tmp/tfparts/tf.part.* | xz -d -T0 | tar -C /tmp/site -xf - || exit 4
  else
    cat /tmp/tfparts/tf.part.* | python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1<<22)" | tar -C /tmp/site -xf - || exit 4
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/small/*.whl || exit 5
  touch /tmp/site/.done
fi
L=/tmp/culibs; rm -rf $L; mkdir -p $L
DIRS=""
for spec in cublas.so.12:libcublas.so.13 cublasLt.so.12:libcublasLt.so.13 cufft.so.11:libcufft.so.12 \
            cusolver.so.11:libcusolver.so.12 cusparse.so.12:libcusparse.so.12 cupti.so.12:libcupti.so.13 \
            cudnn.so.9:libcudnn.so.9 nccl.so.2:libnccl.so.2 nvJitLink.so.12:libnvJitLink.so.13 \
            nvrtc.so.12:libnvrtc.so.13 curand.so.10:libcurand.so.10; do
  want=lib${spec%%:*}; have=${spec#*:}
  f=$(find /opt /usr/local /usr/lib -name "$have" 2>/dev/null | head -1)
  [ -z "$f" ] && f=$(find /opt /usr/local /usr/lib -name "$have*" 2>/dev/null | head -1)
  echo "map $want -> ${f:-NOT FOUND}"
  [ -n "$f" ] && ln -sf "$f" "$L/$want" && DIRS="$DIRS:$(dirname "$f")"
done
export LD_LIBRARY_PATH=$L$DIRS:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TF_FORCE_GPU_ALLOW_GROWTH=true CUDA_CACHE_MAXSIZE=4294967296
[ -n "${SKIP_SMOKE:-}" ] || timeout 180 python3 - <<'EOF' || { echo "SMOKE FAILED rc=$?"; exit 6; }
import time
t = time.time()
import tensorflow as tf, keras
print("tf", tf.__version__, "keras", keras.__version__, "import_s", round(time.time() - t, 1))
gpus = tf.config.list_physical_devices("GPU")
print("gpus", gpus)
assert gpus, "no GPU registered"
a = tf.random.normal([4096, 4096])
print("matmul", float(tf.reduce_sum(a @ a)))
lstm = keras.layers.LSTM(128, return_sequences=True)
x = tf.random.normal([64, 150, 130])
with tf.GradientTape() as tape:
    y = tf.reduce_sum(lstm(x))
g = tape.gradient(y, lstm.trainable_variables)
print("lstm", float(y), [tuple(v.shape) for v in g], "smoke_s", round(time.time() - t, 1))
EOF
for flags in "$@"; do
  echo "=== benchmark $flags"
  start=$(date +%s)
  timeout ${BENCH_TIMEOUT:-330} python3 benchmarks/train_throughput.py $flags; echo "rc=$? seconds=$(( $(date +%s) - start ))"
done
