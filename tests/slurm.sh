#!/bin/sh
# jobs/train.sbatch under a real SLURM: a one-node cluster of this machine, with its own munged,
# slurmctld and slurmd, configuration, ports and state in a temporary directory, so it neither
# needs nor touches a system SLURM. It checks that
#   1. a job trains on 2 tasks and leaves a checkpoint and samples in runs/<name>-<job id>;
#   2. the time-limit warning (USR1 to the batch shell, sent with scancel --batch) makes the job
#      checkpoint, exit 3 and requeue itself, and that the requeued job resumes and ends with
#      the parameters of an uninterrupted run, bit for bit (h5diff); the same warning at
#      start-up, before the ranks run, stops the job after its first step and requeues it;
#   3. scancel (SIGTERM to every process of the job) leaves a checkpoint, and the log names it
#      and its step; a job that fails says why (Open MPI's notices) and that it saved nothing;
#   4. jobs/scaling.sbatch writes its CSV for 1 and 2 ranks.
# In every job's log Open MPI's notices of the expected exit status 3 must be absent.
# Needs root (it runs the daemons); installs munge and SLURM from Debian's archive if missing.
# Exits 77 (skipped) when SLURM cannot be brought up here, printing why and the daemons' logs.
# usage: slurm.sh MPIGAN SOURCE_DIR [MPIEXEC]
set -u
mpigan=$1 src=$2 mpiexec=${3:-mpirun}
fashion=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
smoke=$src/configs/smoke.yaml
t0=$(date +%s)
say() { echo "slurm.sh [$(($(date +%s) - t0))s]: $*"; }
skip() { echo "skipped: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root to run its own munged, slurmctld and slurmd"
[ -r "$fashion" ] || skip "$fashion missing (apt-get install dataset-fashion-mnist)"
command -v h5diff >/dev/null || skip "h5diff missing (apt-get install hdf5-tools)"

# --- packages: Debian's munge and SLURM, installed quietly if missing, their services not started
missing=""
for c in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
  command -v "${c%%:*}" >/dev/null || missing="$missing ${c#*:}"
done
if [ -n "$missing" ]; then
  say "installing$missing"
  # A policy-rc.d that denies keeps the packages' postinst from starting system daemons.
  policy=""
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d &&
                                    chmod 755 /usr/sbin/policy-rc.d && policy=/usr/sbin/policy-rc.d; }
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  { apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; }; }
  ok=$?
  [ -z "$policy" ] || rm -f "$policy"
  [ $ok -eq 0 ] || skip "apt-get install$missing failed"
fi
plugin=$(ls /usr/lib/*/slurm-wlm/mpi_pmix.so /usr/lib/slurm-wlm/mpi_pmix.so /usr/lib*/slurm/mpi_pmix.so 2>/dev/null | head -n 1)
mpi_default=none
[ -n "$plugin" ] && mpi_default=pmix

# --- a private cluster in a temporary directory
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpigan-slurm-XXXXXX")
chmod 755 "$tmp"   # the munge user must reach its socket in here
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool" "$tmp/submit"
daemons="" cluster=""
cleanup() {
  trap - EXIT INT TERM
  # Every job of this private cluster first, while slurmd is there to end their processes
  # (slurmstepd outlives slurmd). Only once SLURM_CONF names our cluster: never a system one's.
  if [ -n "$cluster" ]; then
    ids=$(squeue -h -o %i 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || scancel $ids 2>/dev/null
    n=0
    while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $n -lt 40 ]; do sleep 0.5; n=$((n + 1)); done
  fi
  for p in $daemons; do kill "$p" 2>/dev/null; done
  for p in $daemons; do wait "$p" 2>/dev/null; done
  if [ -n "${MPIGAN_KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
logs() { # print what the daemons and the jobs said
  for f in "$tmp/slurmctld.log" "$tmp/slurmd.log" "$tmp/munge/munged.log" "$tmp"/submit/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f (last 40 lines)"; tail -n 40 "$f"
  done
}
fail() { echo "FAIL: $*"; logs; exit 1; }
skip_logs() { logs; skip "$*"; }

# munged as the munge user, on its own socket with its own key
chown munge:munge "$tmp/munge"
(umask 077 && head -c 1024 /dev/urandom >"$tmp/munge/munge.key") && chown munge:munge "$tmp/munge/munge.key" ||
  skip "cannot write a munge key"
sock=$tmp/munge/munge.socket
# In the foreground (-F) as our own child, so that its PID is $! and nothing is left behind.
setpriv --reuid=munge --regid=munge --init-groups munged -F --socket="$sock" \
  --key-file="$tmp/munge/munge.key" --log-file="$tmp/munge/munged.log" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" >"$tmp/munge/munged.out" 2>&1 &
daemons="$!"
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
munge -n -S "$sock" | unmunge -S "$sock" >/dev/null 2>&1 || { cat "$tmp/munge/munged.out"; skip_logs "munged does not answer on $sock"; }

host=$(hostname -s)
# The machine's CPUs, which slurmd finds too. Not nproc: GNU nproc honours OMP_NUM_THREADS and
# OMP_THREAD_LIMIT, and with OMP_NUM_THREADS=1 the node would have one CPU and a 2-task job
# would never start.
cpus=$(getconf _NPROCESSORS_ONLN)
# Ports away from SLURM's 6817/6818, different for concurrent runs of this test.
port=$((46000 + ($$ % 500) * 4))
cat >"$tmp/slurm.conf" <<EOF
ClusterName=mpigantest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SrunPortRange=$((port + 2000))-$((port + 2099))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again this many seconds after it ended (default 120)
AuthInfo=socket=$sock,cred_expire=10
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=$mpi_default
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$tmp/slurm.conf"
cluster=$SLURM_CONF
slurmctld -D -c -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
daemons="$! $daemons"   # slurm daemons stop before munged
slurmd -D -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
daemons="$! $daemons"   # slurm daemons stop before munged
i=0 state=""
while [ $i -lt 60 ]; do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 0.5; i=$((i + 1))
done
[ "$state" = idle ] || { cat "$tmp/slurmctld.out" "$tmp/slurmd.out"; skip_logs "node $host not idle after 30 s (state '$state')"; }
say "SLURM $(sinfo -V | cut -d' ' -f2) up: node $host, $cpus CPUs, ports $port-$((port + 1)), MpiDefault=$mpi_default"

# The jobs run as root: Open MPI needs these, and sbatch passes the environment on.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 MPIGAN="$mpigan"
cd "$tmp/submit" || fail "cd $tmp/submit"
state_of() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
ended() { # ended JOB: wait up to 60 s for the job to end; prints its state
  i=0
  while [ $i -lt 600 ]; do
    s=$(state_of "$1")
    case $s in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) break;; esac
    sleep 0.1; i=$((i + 1))
  done
  echo "$s"
}
quiet() { # quiet LOG: no notice of Open MPI's about an exit with status 3 in LOG
  ! grep -q "terminated normally, but\|exited with non-zero status" "$1" ||
    ! grep -q "Exit code: *3$" "$1" || fail "$1 holds Open MPI's notices of an exit with status 3"
}
saved() { # saved LOG RUN: the log's last checkpoint line names RUN's newest checkpoint and its step
  line=$(grep "checkpoint: this job saved $2/ckpt-" "$1" | tail -n 1)
  file=$(readlink "$2/latest.h5") || fail "$2 has no latest.h5"
  want=$("$mpigan" info "$2/$file" | sed -n 's/^step  *//p')
  case $line in
    *"saved $2/$file, step $want, written at "*) ;;
    *) fail "$1: '$line' does not name $2/$file at step $want" ;;
  esac
}

# --- 1. a short job to the end
timeout 90 sbatch --wait --job-name=smoke --ntasks=2 --time=5 "$src/jobs/train.sbatch" "$smoke" >"$tmp/sbatch.out" 2>&1
status=$?
id=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$tmp/sbatch.out")
[ $status -eq 0 ] || { cat "$tmp/sbatch.out"; fail "job 1: sbatch --wait exited with $status"; }
run=runs/smoke-$id
[ -f "$run/ckpt-00000050.h5" ] && [ -L "$run/latest.h5" ] || fail "job 1: no checkpoint ckpt-00000050.h5 in $run"
[ -f "$run/samples.h5" ] && [ -f "$run/samples-00000050.png" ] || fail "job 1: no samples in $run"
grep -q "done: step 50," "mpigan-$id.log" || fail "job 1: the log has no summary line"
saved "mpigan-$id.log" "$run"
run1=$run
say "job 1 ($id): 50 steps on 2 tasks, checkpoint and samples in $run"

# --- 2. a longer job, stopped by the time-limit warning, requeued and resumed
steps=2000
opts="--steps $steps --set checkpoint.every=0 --set samples.every=0"
# shellcheck disable=SC2086
id=$(sbatch --parsable --job-name=long --ntasks=2 --time=10 "$src/jobs/train.sbatch" "$smoke" $opts) ||
  fail "job 2: sbatch refused it"
id=${id%%;*}
log=mpigan-$id.log
i=0
while ! grep -q "^epoch .* step [1-9][0-9]*0/$steps " "$log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
grep -q "^epoch .* step" "$log" 2>/dev/null || fail "job 2 ($id) shows no progress after 60 s (state $(state_of "$id"))"
scancel --batch --signal=USR1 "$id" || fail "scancel --batch --signal=USR1 $id"
say "job 2 ($id): USR1 sent to the batch shell at '$(grep "^epoch" "$log" | tail -n 1 | cut -c1-40)'"
i=0
while ! [ "$(field "$id" Restarts)" -ge 1 ] 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(field "$id" Restarts)" -ge 1 ] 2>/dev/null || fail "job 2 was not requeued (Restarts=$(field "$id" Restarts), state $(state_of "$id"))"
grep -q "mpigan: stopped by a STOP file at step [0-9]*; checkpoint" "$log" || fail "job 2: no checkpoint on USR1 (relayed as a STOP file) in $log"
stop=$(sed -n 's/.*stopped by a STOP file at step \([0-9]*\);.*/\1/p' "$log" | head -n 1)
grep -q "checkpoint: this job saved runs/long-$id/ckpt-0*$stop.h5, step $stop, written at " "$log" ||
  fail "job 2: the log does not say that ckpt-$stop was saved"
say "job 2 ($id): checkpointed at step $stop and requeued; waiting for it to start again"
s=$(ended "$id")
[ "$s" = COMPLETED ] || fail "job 2: state $s after the requeue, not COMPLETED (exit code $(field "$id" ExitCode))"
grep -q "train.sbatch .*: job $id start 1 .*--resume runs/long-$id" "$log" || fail "job 2: the second start did not resume"
grep -q "resuming .*ckpt-0*$stop.h5 at step $stop of $steps" "$log" || fail "job 2: no resume banner for step $stop"
grep -q "done: step $steps," "$log" || fail "job 2: the resumed run did not finish"
saved "$log" "runs/long-$id"
quiet "$log"
say "job 2 ($id): resumed at step $stop and finished $steps steps (Restarts=$(field "$id" Restarts))"

# The same run without a stop, straight through mpirun: the same parameters, bit for bit.
export OPENBLAS_NUM_THREADS=1   # as the job (--cpus-per-task=1): BLAS threads change float sums
# shellcheck disable=SC2086
timeout 120 "$mpiexec" -q --oversubscribe -np 2 "$mpigan" train "$smoke" --out "$tmp/straight" $opts --quiet >"$tmp/straight.out" 2>&1 ||
  { cat "$tmp/straight.out"; fail "the uninterrupted run failed"; }
last=$(printf 'ckpt-%08d.h5' "$steps")
for net in generator discriminator; do
  h5diff "runs/long-$id/$last" "$tmp/straight/$last" "/$net" "/$net" >"$tmp/diff" 2>&1 ||
    { cat "$tmp/diff"; fail "/$net of the requeued run differs from the uninterrupted run"; }
done
say "job 2 ($id): /generator and /discriminator equal to an uninterrupted $steps-step run (h5diff)"

# --- 2b. the warning at start-up (a short limit's first look, issue 14): the request waits in the
# run directory's STOP file until the ranks look for it, so the job checkpoints after its first
# step, requeues and finishes, instead of dying while the ranks start
early_steps=300
# shellcheck disable=SC2086
id=$(sbatch --parsable --job-name=early --ntasks=2 --time=10 "$src/jobs/train.sbatch" "$smoke" \
  --steps $early_steps --set checkpoint.every=0 --set samples.every=0) || fail "job 2b: sbatch refused it"
id=${id%%;*}
log=mpigan-$id.log
# As soon as the batch shell has its traps (its first line; a signal before bash has read the
# script would end it, as any process), while mpirun starts the ranks.
i=0
while ! grep -q "^train.sbatch .*: job $id start 0 " "$log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.02; i=$((i + 1)); done
scancel --batch --signal=USR1 "$id" || fail "scancel --batch --signal=USR1 $id (state $(state_of "$id"))"
i=0
while ! [ "$(field "$id" Restarts)" -ge 1 ] 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(field "$id" Restarts)" -ge 1 ] 2>/dev/null || { cat "$log"; fail "job 2b was not requeued after USR1 at start-up (state $(state_of "$id"))"; }
early=$(sed -n 's/.*stopped by a STOP file at step \([0-9]*\);.*/\1/p' "$log" | head -n 1)
[ -n "$early" ] || { cat "$log"; fail "job 2b: no checkpoint on the STOP file in $log"; }
s=$(ended "$id")
[ "$s" = COMPLETED ] || fail "job 2b: state $s after the requeue, not COMPLETED"
grep -q "resuming .*ckpt-0*$early.h5 at step $early of $early_steps" "$log" || fail "job 2b: the second start did not resume from step $early"
grep -q "done: step $early_steps," "$log" || fail "job 2b: the resumed run did not finish"
quiet "$log"
say "job 2b ($id): USR1 $(sed -n 's/^train.sbatch \[\(.*\)\]: USR1 received.*/at \1/p' "$log" | head -n 1), as the job started: stopped at step $early by the STOP file, requeued, finished $early_steps steps"

# --- 3. scancel: SIGTERM to every process of the job at once, mpirun included, which then ends the
# job itself and no longer relays what the ranks print. The ranks checkpoint all the same, and
# the script reads the run directory to say so.
# shellcheck disable=SC2086
id=$(sbatch --parsable --job-name=cancel --ntasks=2 --time=10 "$src/jobs/train.sbatch" "$smoke" $opts) ||
  fail "job 3: sbatch refused it"
id=${id%%;*}
log=mpigan-$id.log
i=0
while ! grep -q "^epoch .* step [1-9][0-9]*0/$steps " "$log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
grep -q "^epoch .* step" "$log" 2>/dev/null || fail "job 3 ($id) shows no progress after 60 s (state $(state_of "$id"))"
scancel "$id" || fail "scancel $id"
s=$(ended "$id")
[ "$s" = CANCELLED ] || fail "job 3: state $s after scancel, not CANCELLED"
i=0
while ! grep -q "checkpoint: " "$log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
saved "$log" "runs/cancel-$id"
[ "$(field "$id" Restarts)" = 0 ] || fail "job 3 was requeued after scancel"
say "job 3 ($id): scancel; $(grep "checkpoint: " "$log" | sed 's/.*checkpoint: //')"

# A job that fails: Open MPI's notices stay, and the log says that the job saved nothing (a
# resume of job 1's run with a bad override; its checkpoint stays the newest).
timeout 60 sbatch --wait --job-name=bad --ntasks=2 --export=ALL,RUN_DIR="$run1" "$src/jobs/train.sbatch" "$smoke" \
  --set train.k=0 >"$tmp/sbatch.out" 2>&1
id=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$tmp/sbatch.out")
log=mpigan-$id.log
grep -q "^mpigan: --set train.k: must be in \[1, 65534\], got 0$" "$log" || fail "job 3b: no error line of mpigan's in $log"
grep -q "^ *Exit code: *2$" "$log" || fail "job 3b: Open MPI's notice of exit code 2 is missing in $log"
grep -q "mpirun exited with status 2$" "$log" || fail "job 3b: no status line in $log"
grep -q "checkpoint: this job saved none; the newest is still $run1/ckpt-00000050.h5, step 50$" "$log" ||
  fail "job 3b: the log does not say that nothing was saved"
say "job 3b ($id): a failing job keeps Open MPI's notices and says it saved nothing"

# --- 4. jobs/scaling.sbatch, submitted from the repository as its comments say; everything it
# writes goes to the temporary directory
(cd "$src" && timeout 120 sbatch --wait --ntasks=2 --output="$tmp/submit/scaling-%j.log" jobs/scaling.sbatch \
  -c configs/smoke.yaml -s 20 -o "$tmp/scaling") >"$tmp/sbatch.out" 2>&1 ||
  { cat "$tmp/sbatch.out"; fail "job 4 (scaling.sbatch) failed"; }
id=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$tmp/sbatch.out")
csv=$tmp/scaling/scaling.csv
[ "$(grep -c '^strong,[12],1,40,20,' "$csv" 2>/dev/null)" -eq 2 ] &&
  [ "$(grep -c '^weak,[12],1,[48]0,20,' "$csv")" -eq 2 ] || { cat "$csv"; fail "job 4: $csv lacks the runs on 1 and 2 ranks"; }
say "job 4 ($id): scaling.sbatch on 1 and 2 ranks: $csv"
echo "slurm: passed in $(($(date +%s) - t0)) s"
