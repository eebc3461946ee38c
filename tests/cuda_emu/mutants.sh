#!/usr/bin/env bash
# Do the GPU tests notice a wrong CUDA kernel? Each mutant below changes one thing in kernels/cuda
# or in train/speed.c's graph path (an index, a flag, a tie rule, a missing wait); the script
# applies it, rebuilds the emulated tests, runs the test that should catch it, and restores the
# file. A mutant the test does not catch ("SURVIVED") is a gap in the tests, or a change that cannot
# matter (then say so here).
#
#   bash tests/cuda_emu/mutants.sh [BUILD] [NAME ...]
# BUILD: an emulated build (cmake -B build-emu -S . -DDRNET_CUDA_EMU=ON -DWITH_MPI=OFF; default
# build-emu), NAME: run only these mutants. About 20 s a mutant on 2 cores (the build dominates),
# minutes for those that test_cuda_speed or test_resume_cuda judge. Each test first runs on the
# unmutated sources and must pass. A development tool, not part of ctest; exit 1 if any mutant
# survived or no longer applies.
# Left out as invisible: letting a TF32 result through with TF32 off (math_allowed in cuda_conv.cu).
# For FP32 cuDNN's search reports the descriptor's math type (PyTorch asserts it), and so does the
# emulator's, so no test can tell; the check stays as a guard.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-emu}
shift $(($# > 0 ? 1 : 0))
ONLY=" $* "
for n in "$@"; do # a misspelt name would otherwise run nothing and report success
  grep -q "^mutant $n " "$0" || { echo "mutants: no mutant named '$n' (the names are the first word after 'mutant' below)"; exit 2; }
done
[ -f "$BUILD/CMakeCache.txt" ] && grep -q '^DRNET_CUDA_EMU:BOOL=ON' "$BUILD/CMakeCache.txt" ||
  { echo "mutants: $BUILD is not an emulated build (-DDRNET_CUDA_EMU=ON)"; exit 2; }
LOGS=$(mktemp -d /tmp/drnet-mutants-XXXXXX)
SAVED=""                               # the file being mutated, restored on any exit
trap '[ -n "$SAVED" ] && cp "$LOGS/original" "$SAVED"' EXIT
Q="$BUILD/test_cuda_ops --quick"
S="DRNET_CUDA_BN_SPLIT=1 $BUILD/test_cuda_ops --quick"
SPEED=$BUILD/test_cuda_speed
RESUME="$BUILD/test_resume_cuda $BUILD/train cuda"
export DRNET_REQUIRE_GPU=1 # a test that skipped would look like one that caught the mutant
# The data the build's ctest gives its tests (test_resume_cuda and test_cuda_speed read CIFAR-10).
CIFAR10_PATH=${CIFAR10_PATH:-$(sed -n 's/.*CIFAR10_PATH=\([^;"]*\).*/\1/p' "$BUILD/CTestTestfile.cmake" | head -1)}
export CIFAR10_PATH OMP_NUM_THREADS=2
bad=0
declare -A BASELINE        # test command -> 1 once it has passed on the unmutated sources

build() { cmake --build "$BUILD" -j 2 --target test_cuda_ops test_cuda_speed test_resume_cuda train > "$1" 2>&1; }

# Each test command must pass on the sources as they are before it can judge a mutant.
baseline() {
  [ -n "${BASELINE[$1]:-}" ] && return 0
  build "$LOGS/baseline.build" || { echo "mutants: the unmutated build fails (see $LOGS/baseline.build)"; exit 2; }
  timeout 900 bash -c "$1" > "$LOGS/baseline.log" 2>&1 ||
    { echo "mutants: '$1' fails on the unmutated sources (see $LOGS/baseline.log)"; exit 2; }
  BASELINE[$1]=1
}

# mutant NAME FILE OLD NEW TEST: OLD must occur exactly once in FILE.
mutant() {
  local name=$1 file=$2 old=$3 new=$4 test=$5 res
  case "$ONLY" in "  ") ;; *" $name "*) ;; *) return ;; esac
  baseline "$test"
  cp "$file" "$LOGS/original" && SAVED=$file
  if ! python3 - "$file" "$old" "$new" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: the text to mutate occurs {text.count(old)} times")
open(path, "w").write(text.replace(old, new))
EOF
  then res="NO LONGER APPLIES (update the mutant)"; bad=1
  elif ! build "$LOGS/$name.build"; then
    res="does not compile (see $LOGS/$name.build)"; bad=1
  elif timeout 900 bash -c "$test" > "$LOGS/$name.log" 2>&1; then
    res="SURVIVED ($test passes; log $LOGS/$name.log)"; bad=1
  else
    res="caught by $test"
  fi
  cp "$LOGS/original" "$file" && SAVED=""
  printf '%-18s %s\n' "$name" "$res"
}

D=kernels/cuda
mutant dr_gather       $D/cuda_dr.cu 'dwbig[(o * g + o % g) * kk + t]' 'dwbig[(o * g + (o + 1) % g) * kk + t]' "$Q"
mutant dr_scatter_flip $D/cuda_dr.cu 'w[o * kk + t]' 'w[o * kk + (kk - 1 - t)]' "$Q"
mutant dr_scatter_zero $D/cuda_dr.cu 'wbig[i] = j == o % g ? w[o * kk + t] : 0.0f;' 'if (j == o % g) wbig[i] = w[o * kk + t];' "$Q"
mutant ce_scale        $D/cuda_loss.cu 'dloss[0] / (float)n;' 'dloss[0] / (float)(n + 1);' "$Q"
mutant ce_loss_mean    $D/cuda_loss.cu '(float)(total / n)' '(float)(total / (n > 1 ? n - 1 : n))' "$Q"
mutant ce_bwd_acc      $D/cuda_loss.cu 'dlogits[k] = accumulate ? dlogits[k] + v : v;' 'dlogits[k] = v;' "$Q"
mutant metrics_tie     $D/cuda_loss.cu 'if (z[j] > z[best]) best = j;' 'if (z[j] >= z[best]) best = j;' "$Q"
mutant relu_nan        $D/cuda_ops.cu 'y[i] = x[i] > 0.0f ? x[i] : 0.0f;' 'y[i] = x[i] <= 0.0f ? 0.0f : x[i];' "$Q"
mutant relu_bwd        $D/cuda_ops.cu 'float v = y[i] > 0.0f ? dy[i] : 0.0f;' 'float v = y[i] >= 0.0f ? dy[i] : 0.0f;' "$Q"
mutant add_fwd         $D/cuda_ops.cu 'GRID_STRIDE(i, count) y[i] = a[i] + b[i];' 'GRID_STRIDE(i, count) y[i] = a[i] + a[i];' "$Q"
mutant add_bwd_acc_b   $D/cuda_ops.cu 'if (db) db[i] = accumulate_b ? db[i] + g : g;' 'if (db) db[i] = g;' "$Q"
mutant avgpool_bwd     $D/cuda_ops.cu 'sum += __fmul_rn(g[o], inv); });' 'sum += g[o]; });' "$Q"
mutant maxpool_tie     $D/cuda_ops.cu 'if (where < 0 || v > best || isnan(v))' 'if (where < 0 || v >= best || isnan(v))' "$Q"
mutant maxpool_bwd     $D/cuda_ops.cu 'if (win[o] == r) sum += g[o];' 'if (win[o] == r) sum = g[o];' "$Q"
mutant sgd_nesterov    $D/cuda_ops.cu 'nesterov ? __fadd_rn(d, __fmul_rn(momentum, b)) : b' 'nesterov ? __fadd_rn(g[i], __fmul_rn(momentum, b)) : b' "$Q"
mutant sgd_wd          $D/cuda_ops.cu '__fmul_rn(weight_decay, p[i])' '__fmul_rn(weight_decay, buf[i])' "$Q"
mutant sgd_device_lr   $D/cuda_ops.cu 'const float rate = lr_dev ? *lr_dev : lr;' 'const float rate = lr_dev ? *lr_dev * 0.5f : lr;' "$SPEED"
mutant bn_running_var  $D/cuda_norm.cu '(float)(var * count / (count - 1.0))' '(float)(var)' "$Q"
mutant bn_bwd_relu     $D/cuda_norm.cu 's_dz += dz;
        s_dz_xhat' 's_dz += dy[o];
        s_dz_xhat' "$Q"
mutant bn_eval_eps     $D/cuda_norm.cu 'float scale = gamma[ch] / sqrtf(running_var[ch] + eps);' 'float scale = gamma[ch] / sqrtf(running_var[ch] + 2 * eps);' "$Q"
mutant split_chunk     $D/cuda_norm_split.cu 'end = begin + per < m ? begin + per : m;' 'end = begin + per < m ? begin + per - 1 : m;' "$S"
mutant split_shift     $D/cuda_norm_split.cu 'const double mu = (double)x[(size_t)ch * hw] + shifted_mean;' 'const double mu = (double)x[(size_t)ch * hw + 1] + shifted_mean;' "$S"
mutant split_walk      $D/cuda_norm_split.cu 'if (j >= hw) j -= hw, img++;' 'if (j > hw) j -= hw, img++;' "$S"
# The backward's ReLU mask, recomputed from x (cuda_norm_split.h, both paths), or read from a y edited
# after the forward (test_cuda_ops' MobileNet step with TF32 copies the reference's forward state in).
mutant bn_mask_shift   $D/cuda_norm_split.h 'm.shift = __fsub_rn(beta[ch], __fmul_rn(mean, m.scale));' 'm.shift = __fadd_rn(beta[ch], __fmul_rn(mean, m.scale));' "$Q"
mutant bn_mask_shift_s $D/cuda_norm_split.h 'm.shift = __fsub_rn(beta[ch], __fmul_rn(mean, m.scale));' 'm.shift = __fadd_rn(beta[ch], __fmul_rn(mean, m.scale));' "$S"
mutant bn_mask_apply   $D/cuda_norm_split.cu 'const BnReluMask mask = {y, mask_from_x != 0, k.x, k.w};' 'const BnReluMask mask = {y, mask_from_x != 0, k.x, k.z};' "$S"
mutant bn_mask_edited  $D/cuda_norm_split.h 'return m.y[o] <= 0.0f;' 'return m.y[o] < 0.0f;' "$BUILD/test_cuda_ops"
mutant split_grad_acc  $D/cuda_norm_split.cu 'dx[i] = accumulate ? __fadd_rn(dx[i], v) : v;' 'dx[i] = v;' "$S"
mutant linear_dw_beta  $D/cuda_linear.cu '&ONE, dw, in));' '&ZERO, dw, in));' "$Q"
mutant linear_db       $D/cuda_linear.cu 'db[j] += sum;' 'db[j] = sum;' "$Q"
mutant linear_bias     $D/cuda_linear.cu 'y[i] += b[i % out];' 'y[i] += b[(i + 1) % out];' "$Q"
mutant conv_dw_acc     $D/cuda_conv.cu 'accumulate ? &ONE : &ZERO, p->w, dw' '&ZERO, p->w, dw' "$Q"
mutant conv_dx_acc     $D/cuda_conv.cu 'accumulate ? &ONE : &ZERO, p->x, dx' '&ZERO, p->x, dx' "$Q"
mutant conv_nondeterm  $D/cuda_conv.cu 'if (p->deterministic && (c[i].determinism != CUDNN_DETERMINISTIC || uses_atomics(dir, c[i].algo))) continue;' '' "$RESUME"
mutant ring_no_wait    $D/cuda_backend.cu '        CUDA_CHECK(cudaEventSynchronize(slot->done));
' '' "$Q"
mutant zero_half       $D/cuda_backend.cu 'cudaMemsetAsync(p, 0, bytes, g_cuda.stream)' 'cudaMemsetAsync(p, 0, bytes / 2, g_cuda.stream)' "$Q"
mutant augment_label   $D/cuda_speed.cu 'if (r == 0) labels[j] = record[0];' 'if (r == 0) labels[j] = record[0] % 9;' "$SPEED"
mutant graph_no_replay $D/cuda_speed.cu 'CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, g_cuda.stream));' '(void)graph;' "$SPEED"
# The trainer's graph path (train/speed.c), which only a GPU or the emulator runs with --cuda-graph.
mutant graph_stale     train/speed.c 'if (c.allocs != s->allocs_at_capture) {' 'if (0) {' "$SPEED"
mutant graph_stale_lr  train/speed.c '    be->upload(s->lr, &t->sgd.lr, sizeof(float));
' '' "$SPEED"

# Leave the build as the sources are.
build /dev/null
[ "$bad" = 0 ] && echo "mutants: every one caught" || echo "mutants: some not caught (above)"
exit "$bad"
