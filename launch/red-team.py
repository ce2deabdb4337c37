#!/usr/bin/env python3
"""Re-runs issue 34's red-team situations against a distrain binary and prints the table: each situation's
command, exit status, what the user saw (the first line of stderr, or of stdout) and what is on disk afterwards,
judged GOOD or BAD by the rule its class states (nothing lost, nothing silently wrong, one clear line and a
non-zero exit for bad input, never a signal, a hang or runaway memory).

    python3 launch/red-team.py [--distrain .build/release/distrain] [--only PREFIX] [--markdown]

Everything happens in a fresh temporary folder; Fashion-MNIST comes from /usr/share/datasets/fashion-mnist (the
dataset-fashion-mnist package, installed by launch/setup.sh). Needs python3 only (stdlib); mpirun for class 0.
Not part of the test suite (each class has its own CLI test there): this is the issue's acceptance table.
"""
import argparse
import ast
import base64
import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

FASHION = "/usr/share/datasets/fashion-mnist"
# An 8x4 RGB JPEG written by libjpeg at quality 100 (the one Tests/DatasetsTests/ImageDecodingTests.swift decodes).
RGB_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
    "AQEBAQEBAQEBAQEBAQH/2wBDAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
    "AQEBAQEBAQH/wAARCAAEAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
    "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
    "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
    "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
    "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDh/wDgoJ4d+Fn/AASd8K/sZ+Hv2T/gd8H4tX/am8P/ALS2jeIfHXxI8K3PjLxV8N9R+G+n"
    "fBKx8HeLPhjZxato3ghPEGk3PxU1nWGtviP4O+I/hXUNR0fw/FqXhm70iLWNL1ooooA//9k=")
QUICK = ["--train-limit", "300", "--test-limit", "100", "--epochs", "1", "--threads", "1"]


class Outcome:
    def __init__(self, command, code, stdout, stderr, seconds, peak_mb):
        self.command, self.code, self.stdout, self.stderr = command, code, stdout, stderr
        self.seconds, self.peak_mb = seconds, peak_mb

    @property
    def said(self):
        lines = [l for l in (self.stderr.splitlines() or self.stdout.splitlines()) if l.strip()]
        errors = [l for l in lines if "error" in l]
        return (errors or lines or [""])[0][:160]

    @property
    def signalled(self):
        return self.code < 0 or self.code >= 128


def run(binary, arguments, cwd, timeout=300, stdin=None, stdout_path=None, env=None):
    """Runs distrain (or mpirun), returning its outcome with the child's peak RSS (wait4's rusage)."""
    command = arguments if arguments[0] != "distrain" else [binary] + arguments[1:]
    start = time.time()
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.PIPE, stdin=stdin,
                               env=env or os.environ, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return Outcome(" ".join(arguments), 999, "", "HUNG: killed after %d s" % timeout, timeout, 0)
    finally:
        if stdout_path:
            out.close()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    text = lambda b: (b or b"").decode("utf-8", "replace")
    return Outcome(" ".join(arguments), process.returncode, text(stdout), text(stderr), time.time() - start, peak)


def png(path, width=28, height=28, shade=0, channels=1):
    """A small greyscale (or RGB) PNG written with zlib: a gradient shifted by `shade`."""
    rows = b"".join(b"\x00" + bytes(((x * 9 + y * 5 + shade) % 256) for x in range(width) for _ in range(channels))
                    for y in range(height))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def image_folder(root, classes, per_class=12):
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            png(os.path.join(folder, "img-%02d.png" % i), shade=index * 97 + i * 3)
    return root


def digest(path):
    """Every file's SHA-256 under `path` (distrain's own lock file left out: every run takes it)."""
    if os.path.isdir(path):
        return {name: digest(os.path.join(path, name)) for name in sorted(os.listdir(path)) if name != ".lock"}
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[8 + length + begin:8 + length + end]
        tensors[name] = struct.unpack("<%df" % (len(raw) // 4), raw)
    return tensors


def latest_checkpoint(folder):
    steps = sorted(n for n in os.listdir(folder) if n.startswith("step-"))
    return os.path.join(folder, steps[-1])


def table_csv(path, rows, header="a,b,label"):
    with open(path, "w") as f:
        f.write(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


class RedTeam:
    def __init__(self, binary, root):
        self.binary, self.root, self.rows = binary, root, []
        self.mpirun = shutil.which("mpirun")

    def folder(self, name):
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def distrain(self, *arguments, cwd=None, **options):
        return run(self.binary, ["distrain"] + list(arguments), cwd or self.root, **options)

    def record(self, case, outcome, disk, good):
        verdict = "SENSITIVE" if good is None else "GOOD" if good else "BAD"
        # A non-UTF-8 file name (class 5) stays readable in the table: its bytes as \xNN.
        printable = lambda s: str(s).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        outcome.command, outcome.stderr, outcome.stdout = map(printable, (outcome.command, outcome.stderr, outcome.stdout))
        command = outcome.command.replace(self.root + "/", "").replace(self.binary, "distrain")
        command = command.replace(" --oversubscribe --mca pml ob1 --mca btl self,vader", "")
        command = command.replace(" --allow-run-as-root", "").replace(self.mpirun or "mpirun", "mpirun")
        self.rows.append((case, command,
                          outcome.code, outcome.said.replace(self.root + "/", ""), disk, verdict))

    def refused(self, outcome):
        """One clear error line, a usage or data exit code, no signal."""
        return 0 < outcome.code < 128 and "distrain: error:" in outcome.stderr

    def trained_run(self, name, *extra):
        folder = self.folder(name)
        outcome = self.distrain("fashion-mnist", *QUICK, "--checkpoint-dir", folder, *extra)
        assert outcome.code == 0, outcome.stderr
        return folder

    # 0. BatchNorm: N ranks = 1 rank. Each setting twice: with float sums (the default) N ranks agree with 1 to 1e-5
    # where training does not amplify last-bit differences, and cnn-bn on these images can (a constant background
    # past a ReLU): such rows are SENSITIVE, not a verdict on the sums. With --exact-sums the promise is bit for bit in
    # any regime: GOOD only when every tensor is identical.
    def class0_batchnorm(self):
        if not self.mpirun:
            return
        for ranks, limit, batch, seed, extra in [(2, 961, 32, 4, ["--lr", "0.01", "--momentum", "0.5"]),
                                                 (3, 961, 32, 4, ["--lr", "0.01", "--momentum", "0.5"]),
                                                 (4, 961, 32, 4, ["--lr", "0.01", "--momentum", "0.5"]),
                                                 (3, 1001, 100, 11, ["--lr", "0.05"]),
                                                 (4, 2003, 64, 4, ["--lr", "0.005", "--momentum", "0.9"])]:
            for exact in [[], ["--exact-sums"]]:
                common = ["fashion-mnist", "--model", "cnn-bn", "--epochs", "1", "--train-limit", str(limit),
                          "--test-limit", "100", "--batch-size", str(batch), "--seed", str(seed), "--threads", "1",
                          "--no-augment", "--optimizer", "sgd"] + extra + exact
                name = "%d-%d%s" % (ranks, limit, "-exact" if exact else "")
                one, many = self.folder("bn-1-" + name), self.folder("bn-" + name)
                self.distrain(*common, "--checkpoint-dir", one)
                flags = ["-n", str(ranks), "--oversubscribe", "--mca", "pml", "ob1", "--mca", "btl", "self,vader"]
                flags += ["--allow-run-as-root"] if os.getuid() == 0 else []
                outcome = run(self.binary, [self.mpirun] + flags + [self.binary] + common + ["--checkpoint-dir", many],
                              self.root, timeout=900)
                a = safetensors(os.path.join(latest_checkpoint(one), "model.safetensors"))
                b = safetensors(os.path.join(latest_checkpoint(many), "model.safetensors"))
                worst = max(max(abs(x - y) for x, y in zip(a[n], b[n])) / max(1e-30, max(abs(x) for x in a[n]))
                            for n in a)
                identical = a.keys() == b.keys() and all(struct.pack("<%df" % len(a[n]), *a[n]) ==
                                                         struct.pack("<%df" % len(b[n]), *b[n]) for n in a)
                steps = (limit + batch - 1) // batch
                case = "0 cnn-bn, %d ranks vs 1, %d samples, batch %d (%d steps), %s" % (
                    ranks, limit, batch, steps, " ".join(extra + exact))
                if exact:
                    disk, verdict = "every tensor %s" % ("bitwise identical" if identical else "DIFFERS (%.1e)" % worst), \
                        outcome.code == 0 and identical
                else:
                    disk = "max |Δ|/max|w| over tensors: %.1e (float sums)" % worst
                    verdict = True if outcome.code == 0 and worst < 1e-5 else None if outcome.code == 0 else False
                self.record(case, outcome, disk, verdict)

    # 1. Outputs that destroy what was there.
    def class1_outputs(self):
        work = self.folder("own-files")
        for d in ["step-by-step-guide", "step-2", ".tmp-build"]:
            os.makedirs(os.path.join(work, d))
            open(os.path.join(work, d, "notes.txt"), "w").write("mine\n")
        for f in ["paper.tex.tmp-1", "best", "latest"]:
            open(os.path.join(work, f), "w").write("mine\n")
        before = digest(work)
        outcome = self.distrain("fashion-mnist", *QUICK, "--checkpoint-dir", ".", cwd=work)
        after = digest(work)
        kept = all(after.get(k) == v for k, v in before.items())
        self.record("1 --checkpoint-dir . among the user's files (best, latest not ours)", outcome,
                    "user's files %s" % ("all intact" if kept else "CHANGED"), kept and outcome.code != 0 or
                    kept and outcome.code == 0)
        for f in ["best", "latest"]:
            os.remove(os.path.join(work, f))
        before = digest(work)
        outcome = self.distrain("fashion-mnist", *QUICK, "--checkpoint-dir", ".", cwd=work)
        after = digest(work)
        kept = all(after.get(k) == v for k, v in before.items())
        self.record("1 --checkpoint-dir . among step-2/, step-by-step-guide/, .tmp-build/, paper.tex.tmp-1", outcome,
                    "user's files %s; %d checkpoints" % ("all intact" if kept else "CHANGED",
                                                         len([n for n in after if n.startswith("step-0")])),
                    kept and outcome.code == 0)

        finished = self.trained_run("finished")
        before = digest(finished)
        outcome = self.distrain("fashion-mnist", *QUICK, "--checkpoint-dir", finished, "--seed", "9")
        self.record("1 fresh run into a folder holding a finished run", outcome,
                    "the finished run %s" % ("intact" if digest(finished) == before else "CHANGED"),
                    self.refused(outcome) and digest(finished) == before)

        metrics = os.path.join(self.root, "run.jsonl")
        self.distrain("fashion-mnist", *QUICK, "--metrics", metrics)
        if os.getuid() == 0 or os.access("/dev/null", os.W_OK):
            outcome = self.distrain("report", metrics, "--out", "/dev/null")
            device = os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
            self.record("1 report --out /dev/null", outcome, "/dev/null %s" % ("still a device" if device else "REPLACED"),
                        self.refused(outcome) and device)
        fifo = os.path.join(self.root, "pipe")
        os.mkfifo(fifo)
        outcome = self.distrain("report", metrics, "--out", fifo, timeout=30)
        is_fifo = os.path.exists(fifo) and not os.path.isfile(fifo)
        self.record("1 report --out FIFO", outcome, "FIFO %s" % ("still a FIFO" if is_fifo else "REPLACED"),
                    self.refused(outcome) and is_fifo)
        before = digest(metrics)
        outcome = self.distrain("report", metrics, "--out", metrics)
        self.record("1 report run.jsonl --out run.jsonl", outcome,
                    "metrics %s" % ("intact" if digest(metrics) == before else "REPLACED"),
                    self.refused(outcome) and digest(metrics) == before)
        shared = self.folder("shared-metrics")
        outcome = self.distrain("fashion-mnist", *QUICK, "--metrics", shared + "/metrics.jsonl", "--checkpoint-dir", shared)
        lines = open(shared + "/metrics.jsonl").read().splitlines() if os.path.exists(shared + "/metrics.jsonl") else []
        torn = sum(1 for l in lines if not self.is_json(l))
        self.record("1 --metrics DIR/metrics.jsonl --checkpoint-dir DIR", outcome,
                    "%d lines, %d torn" % (len(lines), torn), torn == 0 and (outcome.code == 0 or self.refused(outcome)))
        notes = os.path.join(self.root, "notes.txt")
        open(notes, "w").write("my notes\n")
        outcome = self.distrain("fashion-mnist", *QUICK, "--metrics", notes)
        self.record("1 --metrics onto an unrelated file", outcome,
                    "notes.txt %s" % ("intact" if open(notes).read() == "my notes\n" else "OVERWRITTEN"),
                    self.refused(outcome) and open(notes).read() == "my notes\n")
        mine = self.folder("report-cwd")
        open(mine + "/report.html", "w").write("<p>my page</p>\n")
        outcome = self.distrain("report", metrics, cwd=mine)
        intact = open(mine + "/report.html").read() == "<p>my page</p>\n"
        self.record("1 report without --out beside an unrelated report.html", outcome,
                    "report.html %s" % ("intact" if intact else "OVERWRITTEN"), intact and outcome.code != 0)

        source = latest_checkpoint(finished)
        pruned = os.path.join(self.root, "pruned")
        first = self.distrain("prune", "--checkpoint", source, "fashion-mnist", "--sparsity", "0.5",
                              "--finetune-epochs", "1", "--threads", "1", "--out", pruned)
        second = self.distrain("prune", "--checkpoint", source, "fashion-mnist", "--sparsity", "0.8",
                               "--finetune-epochs", "1", "--threads", "1", "--out", pruned)
        table = open(pruned + "/pruning.json").read() if os.path.exists(pruned + "/pruning.json") else ""
        both = "0.5" in table and "0.8" in table
        self.record("1 prune twice into one --out (0.5 then 0.8)", second,
                    "pruning.json holds %s" % ("both sparsities" if both else "ONE"), first.code == 0 and both)
        before = digest(finished)
        outcome = self.distrain("quantize", "--checkpoint", source, "fashion-mnist", "--test-limit", "100", "--out",
                                finished)
        self.record("1 quantize --out into the run's own folder", outcome,
                    "run folder %s" % ("intact" if digest(finished) == before else "CHANGED"),
                    self.refused(outcome) and digest(finished) == before)

    @staticmethod
    def is_json(line):
        try:
            json.loads(line)
            return True
        except ValueError:
            return False

    # 2. Names matched by position.
    def class2_names(self):
        pets = image_folder(self.folder("pets"), ["cat", "dog"])
        run_dir = self.folder("pets-run")
        self.distrain("train", pets, "--epochs", "1", "--threads", "1", "--checkpoint-dir", run_dir, "--test-split", "0.25")
        swapped = self.folder("pets-swapped")
        shutil.copytree(pets + "/dog", swapped + "/Dog")
        shutil.copytree(pets + "/cat", swapped + "/cat")
        outcome = self.distrain("evaluate", "--checkpoint", run_dir, swapped)
        self.record("2 evaluate a cat/dog model on folders Dog/cat", outcome, "-",
                    self.refused(outcome) and "Dog" in outcome.stderr)
        rows = [(i % 7, (i * 3) % 5, "red" if i % 2 else "blue") for i in range(60)]
        train = table_csv(self.root + "/colors.csv", rows)
        other = table_csv(self.root + "/shapes.csv", [(a, b, "square" if c == "red" else "circle") for a, b, c in rows])
        csv_run = self.folder("colors-run")
        self.distrain("train", train, "--label", "label", "--epochs", "1", "--threads", "1", "--checkpoint-dir", csv_run)
        outcome = self.distrain("evaluate", "--checkpoint", csv_run, other, "--label", "label")
        self.record("2 evaluate a CSV whose label values are all different", outcome, "-", self.refused(outcome))
        fashion = latest_checkpoint(self.trained_run("fashion-for-mnist"))
        outcome = self.distrain("evaluate", "--checkpoint", fashion, "mnist", "--data-dir", FASHION, "--test-limit", "100")
        self.record("2 evaluate a Fashion-MNIST checkpoint as mnist", outcome, "-", self.refused(outcome))
        doubled = table_csv(self.root + "/doubled.csv", rows, header="a,a,label")
        outcome = self.distrain("train", doubled, "--label", "label", "--epochs", "1", "--threads", "1")
        self.record("2 train on a CSV naming column a twice", outcome, "-", self.refused(outcome))

    # 3. Numbers that trap.
    def class3_numbers(self):
        for case, rows in [("a regression target ~3e7 (MSE ~1e15)", [(i, i % 3, 3e7 + i * 1e5) for i in range(80)]),
                           ("a feature cell of 1e38", [(1e38 if i == 5 else i, i % 3, i * 0.5) for i in range(80)])]:
            path = table_csv(self.root + "/numbers-%d.csv" % len(self.rows), rows, header="x,y,target")
            folder = self.folder("numbers-%d" % len(self.rows))
            outcome = self.distrain("train", path, "--label", "target", "--task", "regression", "--epochs", "2",
                                    "--threads", "1", "--checkpoint-dir", folder)
            checkpoints = [n for n in os.listdir(folder) if n.startswith("step-")]
            self.record("3 " + case, outcome, "%d checkpoints" % len(checkpoints),
                        not outcome.signalled and (outcome.code == 0 and checkpoints or self.refused(outcome)))

    # 4. Walks and sizes that run away.
    def class4_walks(self):
        checkpoint = latest_checkpoint(self.trained_run("walks-run"))
        images = self.folder("walk/deep/forty")  # the links lead up to walk/, which holds nothing else
        for i in range(40):
            png(images + "/%02d.png" % i, shade=i)
        os.symlink("..", images + "/up")
        outcome = self.distrain("predict", "--checkpoint", checkpoint, images, timeout=60)
        count = len([l for l in outcome.stdout.splitlines() if ".png" in l])
        self.record("4 predict a folder of 40 images with a link up -> ..", outcome, "%d predictions" % count,
                    outcome.code == 0 and count == 40)
        os.symlink("../..", images + "/up2")
        outcome = self.distrain("predict", "--checkpoint", checkpoint, images, timeout=60)
        count = len([l for l in outcome.stdout.splitlines() if ".png" in l])
        self.record("4 ... and a second link up2 -> ../..", outcome, "%d predictions, %.0f s" % (count, outcome.seconds),
                    outcome.code == 0 and count == 40)
        for batch in ["1000000000", "1000000"]:
            outcome = self.distrain("fashion-mnist", "--train-limit", "500", "--test-limit", "100", "--epochs", "1",
                                    "--threads", "1", "--batch-size", batch)
            self.record("4 --batch-size %s with 500 samples" % batch, outcome, "-",
                        outcome.code == 0 or self.refused(outcome))
        events = [{"event": "start", "classes": ["c%d" % i for i in range(2000)]},
                  {"event": "end", "confusion": [[1] * 2000 for _ in range(2000)]}]
        crafted = self.root + "/crafted.jsonl"
        open(crafted, "w").write("".join(json.dumps(e) + "\n" for e in events))
        outcome = self.distrain("report", crafted, "--out", self.root + "/crafted.html")
        size = os.path.getsize(self.root + "/crafted.html") if os.path.exists(self.root + "/crafted.html") else 0
        self.record("4 report of a 12 MB metrics file with a 2000x2000 confusion matrix", outcome,
                    "page %.1f MB" % (size / 1e6), size < 5e6 and (outcome.code == 0 or self.refused(outcome)))
        spec = self.root + "/huge.spec"
        open(spec, "w").write("Flatten()\n" + "Linear(784, 10000)\nReLU()\n" + "Linear(10000, 10000)\nReLU()\n" * 4
                              + "Linear(10000, 10)\n")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        outcome = self.distrain("summary", "--model", spec)
        grew = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > before
        self.record("4 summary of a 408 M-parameter spec", outcome,
                    "peak RSS %s" % ("≤ earlier runs'" if not grew else "%.0f MB" % outcome.peak_mb),
                    outcome.code == 0 and (not grew or outcome.peak_mb < 500))

    # 5. Bytes that are not what they claim.
    def class5_bytes(self):
        mixed = image_folder(self.folder("mixed-names"), ["alpha", "beta"])
        os.makedirs(os.fsencode(mixed) + b"/gamma-\xff")
        for i in range(12):
            png(os.fsdecode(os.fsencode(mixed) + b"/gamma-\xff/%02d.png" % i), shade=200 + i)
        outcome = self.distrain("train", mixed, "--epochs", "1", "--threads", "1")
        self.record("5 a class folder whose name is not UTF-8", outcome, "-", self.refused(outcome))
        checkpoint = latest_checkpoint(self.trained_run("bytes-run"))
        odd = os.fsdecode(os.fsencode(self.root) + b"/odd-\xfe.png")
        png(odd)
        outcome = run(self.binary, [self.binary, "predict", "--checkpoint", checkpoint, odd], self.root)
        self.record("5 predict a file whose name is not UTF-8", outcome, "-",
                    outcome.code == 0 or self.refused(outcome) and "No such file" not in outcome.stderr)
        jpegs = self.folder("jpegs")
        for name in ["a", "b"]:
            os.makedirs(jpegs + "/" + name)
            for i in range(6):
                open("%s/%s/%d.jpg" % (jpegs, name, i), "wb").write(RGB_JPEG)
        open(jpegs + "/a/cut.jpg", "wb").write(RGB_JPEG[:-12])  # cut inside the scan data: libjpeg only warns
        outcome = self.distrain("train", jpegs, "--epochs", "1", "--threads", "1", "--channels", "3")
        self.record("5 a JPEG truncated inside its scan data", outcome, "-",
                    self.refused(outcome) and "cut.jpg" in outcome.stderr)

    # 6. Output that can lie or inject.
    def class6_output(self):
        checkpoint = latest_checkpoint(self.trained_run("output-run"))
        image = self.root + "/one.png"
        png(image)
        for case, arguments in [("predict", ["predict", "--checkpoint", checkpoint, image]),
                                ("export", ["export", "--pytorch", checkpoint]),
                                ("evaluate --json", ["evaluate", "--checkpoint", checkpoint, "fashion-mnist", "--json",
                                                     "--test-limit", "100"]),
                                ("summary", ["summary", "--model", "mlp"])]:
            outcome = self.distrain(*arguments, stdout_path="/dev/full")
            self.record("6 %s > /dev/full" % case, outcome, "-", 0 < outcome.code < 128 and outcome.stderr.strip() != "")
        hostile = os.path.join(self.root, "x\nimport os; os.system('touch PWNED')\n")
        shutil.copytree(checkpoint, hostile)
        outcome = self.distrain("export", "--pytorch", hostile)
        calls = [n for n in ast.walk(ast.parse(outcome.stdout)) if isinstance(n, ast.Attribute) and n.attr == "system"] \
            if outcome.code == 0 else []
        self.record("6 export --pytorch of a path holding a newline and os.system", outcome,
                    "%d os.system calls in the generated code" % len(calls), outcome.code == 0 and not calls
                    or self.refused(outcome))
        for name in ["training", "forward", "class"]:
            spec = self.root + "/%s.spec" % name
            open(spec, "w").write("Flatten()\n%s = Linear(784, 10)\n" % name)
            outcome = self.distrain("fashion-mnist", *QUICK, "--model", spec)
            self.record("6 a spec naming a module %s" % name, outcome, "-", self.refused(outcome))

    # 7. The WEAK list.
    def class7_weak(self):
        def spec(text, name):
            path = self.root + "/" + name
            open(path, "wb").write(text if isinstance(text, bytes) else text.encode())
            return path
        outcome = self.distrain("fashion-mnist", *QUICK, "--model", spec("Flatten()\nLinear(1, 10000000000)\n", "big.spec"))
        self.record("7 Linear(1, 10000000000)", outcome, "-", self.refused(outcome) and "1000000" in outcome.stderr)
        outcome = self.distrain("fashion-mnist", *QUICK, "--model",
                                spec(b"\xef\xbb\xbfFlatten()\r\nLinear(784, 10)\r\n", "crlf.spec"))
        self.record("7 a spec with CRLF line endings and a BOM", outcome, "-", outcome.code == 0)
        outcome = self.distrain("fashion-mnist", *QUICK, "--model",
                                spec("Conv2d(1, 4, 3, padding=100000)\nFlatten()\nLinear(10, 10)\n", "pad.spec"))
        self.record("7 Conv2d(..., padding=100000)", outcome, "-",
                    self.refused(outcome) and "320083205408" not in outcome.stderr)
        base = "Flatten()\nLinear(784, 32)\nReLU()\nLinear(32, 10)\n"
        folder = self.folder("comment-edit")
        path = spec(base, "edited.spec")
        self.distrain("fashion-mnist", *QUICK, "--model", path, "--checkpoint-dir", folder)
        spec("# a note\n" + base, "edited.spec")
        outcome = self.distrain("fashion-mnist", *QUICK[:4], "--epochs", "2", "--threads", "1", "--model", path,
                                "--checkpoint-dir", folder, "--resume", "auto")
        self.record("7 resume after a comment-only edit of the spec", outcome, "-", outcome.code == 0)
        pets = image_folder(self.folder("self-dir"), ["cat", "dog"])
        outcome = self.distrain("train", pets, "--epochs", "1", "--threads", "1", "--checkpoint-dir", pets + "/runs")
        self.record("7 an image folder as its own checkpoint dir", outcome,
                    "runs/ %s" % ("absent" if not os.path.exists(pets + "/runs") else "CREATED"), self.refused(outcome))
        rows = [(i % 7, "x" * (10 << 20) if i == 3 else i % 5, "a") for i in range(20)]
        outcome = self.distrain("train", table_csv(self.root + "/field.csv", rows), "--label", "label", "--epochs", "1")
        self.record("7 a 10 MB CSV field", outcome, "longest stderr line %d chars" %
                    max([len(l) for l in outcome.stderr.splitlines()] or [0]),
                    max([len(l) for l in outcome.stderr.splitlines()] or [0]) < 400)
        numeric = table_csv(self.root + "/ones.csv", [(i % 7, i % 3, "1" if i % 2 else "1.0") for i in range(40)]
                            + [(i % 5, i % 2, "2") for i in range(40)])
        outcome = self.distrain("train", numeric, "--label", "label", "--epochs", "1", "--threads", "1")
        # The table MLP on 2 features: Linear(2, 128) + Linear(128, K) = 642 parameters for K = 2 classes, 771 for 3.
        two = "642 parameters" in outcome.stdout + outcome.stderr
        self.record("7 CSV labels 1 and 1.0", outcome, "2 classes" if two else "NOT 2 classes", outcome.code == 0 and two)
        cr = self.root + "/cr.csv"
        open(cr, "w").write("a,b,label\r" + "".join("%d,%d,%s\r" % (i % 7, i % 3, "ab"[i % 2]) for i in range(60)))
        outcome = self.distrain("train", cr, "--label", "label", "--epochs", "1", "--threads", "1")
        self.record("7 a CSV with CR-only line endings", outcome, "-", outcome.code == 0)
        bom_run = self.folder("bom-run")
        bom = self.root + "/bom.csv"
        open(bom, "w", encoding="utf-8-sig").write("a,b,label\n" + "".join(
            "%d,%d,%s\n" % (i % 7, i % 3, "ab"[i % 2]) for i in range(60)))
        self.distrain("train", bom, "--label", "label", "--epochs", "1", "--threads", "1", "--checkpoint-dir", bom_run)
        outcome = self.distrain("predict", "--checkpoint", latest_checkpoint(bom_run), bom)
        self.record("7 predict a CSV with a BOM, without --label", outcome, "-", outcome.code == 0)
        outcome = self.distrain("lr-find", "fashion-mnist", "--train-limit", "2000", "--threads", "1")
        suggested = [l for l in outcome.stdout.splitlines() if l.startswith("suggested --lr")]
        value = float(suggested[0].split()[2].rstrip(",")) if suggested else None
        self.record("7 lr-find's suggestion", outcome, "suggested %s" % value,
                    outcome.code == 0 and value is not None and 1e-7 <= value <= 10)
        outcome = self.distrain("sweep", "--out", self.root + "/sweep", "--", "fashion-mnist", "--lr", "1e-3,3e-3",
                                *QUICK, "--checkpoint-every", "2")
        self.record("7 --checkpoint-every in a sweep", outcome, "-", outcome.code == 0)
        outcome = self.distrain("supervise", "--", self.binary, "fashion-mnist", "--checkpoint-dir",
                                self.root + "/supervised", "--no-such-flag")
        attempts = outcome.stderr.count("failed (exit")
        self.record("7 supervise a usage error", outcome, "%d attempt(s)" % attempts,
                    0 < outcome.code < 128 and attempts == 1)
        outcome = self.distrain("predict", "--checkpoint", latest_checkpoint(bom_run), "--top-k", "-1", bom)
        self.record("7 --top-k -1", outcome, "-", self.refused(outcome) and "Missing value" not in outcome.stderr)
        outcome = self.distrain("fashion-mnist", "--recipe", "fast", "--recipe", "fast", *QUICK)
        self.record("7 --recipe fast --recipe fast", outcome, "-", self.refused(outcome) and "recipe" in outcome.stderr)
        outcome = self.distrain("train", pets, "--label", "species", "--epochs", "1")
        self.record("7 --label on an image folder", outcome, "-", self.refused(outcome))
        bad = [self.distrain(*a) for a in [["fashion-mnist", "--epochs", "zero"], ["fashion-mnist", "--lr", "-1"],
                                             ["evaluate"], ["train"], ["fashion-mnist", "--nope"]]]
        prefixed = all(o.stderr.lstrip().startswith("distrain: error:") for o in bad)
        self.record("7 error prefixes (5 bad invocations)", bad[0], "all start 'distrain: error:'" if prefixed else
                    "MIXED", prefixed and all(0 < o.code < 128 for o in bad))
        # A signal before the first step, with a --checkpoint-dir: it says it stopped (128 + 15, as a shell reports
        # a death by SIGTERM) and what was saved, never that there is no --checkpoint-dir.
        folder = self.folder("early-signal")
        process = subprocess.Popen([self.binary, "fashion-mnist", "--epochs", "1", "--threads", "1", "--checkpoint-dir",
                                    folder], cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        outcome = Outcome("distrain fashion-mnist --checkpoint-dir early-signal (SIGTERM at 0.1 s)", process.returncode,
                          stdout.decode(), stderr.decode(), 0, 0)
        said = [l for l in outcome.stderr.splitlines() if "stopped by SIGTERM" in l]
        self.record("7 a signal before the first step", outcome, "-", outcome.code == 143 and bool(said)
                    and "no --checkpoint-dir" not in outcome.stderr and "after epoch 0" not in outcome.stderr)

    def markdown(self):
        lines = ["| situation | command | exit | what the user saw | on disk | verdict |", "|---|---|---|---|---|---|"]
        for case, command, code, said, disk, verdict in self.rows:
            clean = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
            lines.append("| %s |" % " | ".join(clean(x) for x in [case, "`%s`" % command[:110], code, said, disk, verdict]))
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distrain", default=".build/release/distrain")
    parser.add_argument("--only", default="", help="run the classes whose method names start with this (class1, ...)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    options = parser.parse_args()
    binary = os.path.abspath(options.distrain)
    if not os.access(binary, os.X_OK):
        sys.exit("red-team: %s is not an executable; build it (swift build -c release) or pass --distrain" % binary)
    root = tempfile.mkdtemp(prefix="distrain-red-team-")
    team = RedTeam(binary, root)
    for name in sorted(n for n in dir(team) if n.startswith("class")):
        if name.startswith(options.only):
            try:
                getattr(team, name)()
            except Exception as error:  # a harness failure is reported as such, never as a verdict
                team.rows.append((name, "-", "-", "harness failed: %s" % error, "-", "HARNESS"))
    if options.markdown:
        print(team.markdown())
    else:
        for row in team.rows:
            print("%-5s %4s  %-70s %s" % (row[5], row[2], row[0][:70], row[3][:100]))
    bad = sum(1 for row in team.rows if row[5] not in ("GOOD", "SENSITIVE"))
    sensitive = sum(1 for row in team.rows if row[5] == "SENSITIVE")
    print("\n%d situations: %d GOOD, %d BAD or harness failures, %d SENSITIVE (outside the promised regime; "
          "work folder %s)" % (len(team.rows), len(team.rows) - bad - sensitive, bad, sensitive, root))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
