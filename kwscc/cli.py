"""Command line: `kwscc [compile] MODEL -o OUT` compiles; `validate`, `report`, `sweep` and `supported-ops`."""
from __future__ import annotations

import argparse
import logging
import logging.handlers
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path

from kwscc import __version__, progress
from kwscc.errors import KwsccError
from kwscc.naming import printable

SUBCOMMANDS = ("compile", "validate", "report", "sweep", "supported-ops")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one `kwscc: error:` line like every other error."""

    def error(self, message: str):
        raise KwsccError(f"{message} (see {self.prog} --help)")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (a half-written output folder) runs."""


def _input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... got '{text}'") from None
    if not name or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... with positive sizes, got '{text}'")
    return name, shape


def _frames(text: str) -> int:
    try:
        frames = int(text)
    except ValueError:
        frames = 0
    if frames <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of frames, got '{text}'")
    return frames


def _compile_options(p: argparse.ArgumentParser) -> None:
    from kwscc.backends.base import BACKENDS
    from kwscc.driver import CPUS

    p.add_argument("model", help="model file (.onnx or .tflite)")
    p.add_argument("--calib", metavar="DATA", help="calibration data: FILE.npy | FILE.npz | FILE.npz:KEY")
    p.add_argument("--name", help="C name prefix (default: the model file name)")
    p.add_argument("--backend", default="cmsis-nn", choices=sorted(BACKENDS))
    p.add_argument("--rounding", default="default", choices=("default", "single"),
                   help="CMSIS-NN requantization build: default (TFLM double rounding) or single "
                        "(-DCMSIS_NN_USE_SINGLE_ROUNDING)")
    p.add_argument("--cpu", default="cortex-m4", choices=CPUS, help="target core: sizes scratch for its CMSIS-NN build")
    p.add_argument("--weights", default="per-channel", choices=("per-channel", "per-tensor", "seed"),
                   help="granularity of the power-of-two weight formats; seed: ML-KWS quant_test.py's weights "
                        "(per tensor, 7 - ceil(log2 max|w|), no bias correction, signed activations)")
    p.add_argument("--calib-method", default="mse", choices=("max", "percentile", "kl", "mse"),
                   help="how calibration data become activation formats (docs/quantization.md)")
    p.add_argument("--ranges", metavar="FILE", help="calibration ranges JSON: reused if it exists, else written")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                   help="skip the empirical bias correction (cmsis-nn)")
    p.add_argument("--no-unsigned", dest="unsigned_relu", action="store_false",
                   help="keep ReLU outputs in signed Qm.n (no zero point -128)")
    p.add_argument("--no-input-zero-point", dest="input_zero_point", action="store_false",
                   help="quantize the input symmetrically (Qm.n) instead of with the zero point that fits its range")
    p.add_argument("--split-input", choices=("auto", "on", "off"),
                   help="each input value as hi + lo int8 for a convolutional or LSTM/GRU first layer "
                        "(input 4 bits finer; 2x the input buffer and the first layer's input MACs): auto = "
                        "only where it does not raise the arena (a recurrent layer: always, its cost being "
                        "the input buffer); "
                        "default: as --optimize says (balanced and speed: auto, ram: off, accuracy: on)")
    p.add_argument("--optimize", default="balanced", choices=("balanced", "speed", "ram", "accuracy"),
                   help="trade-off (cmsis-nn backend): speed = the kernels with the fewest instructions (cost "
                        "table per core) even if their scratch raises the arena, including kwscc's wide kernels "
                        "(their weights as int16: 2x those layers' weight flash), and an int8 model compiled without data "
                        "gets power-of-two weights instead of its own (shift-only requantization, lower agreement; an "
                        "LSTM keeps its own); ram = the kernels with the least "
                        "scratch, no split input; accuracy = the split input even where it raises the arena; "
                        "balanced (default) = the fastest kernels and the split input where the arena does not grow")
    p.add_argument("--kernels", default="auto", choices=("auto", "cmsis-nn", "kwscc"),
                   help="cmsis-nn backend: per layer the kernel the cost table picks (auto), always CMSIS-NN's "
                        "call, or kwscc's own kernel wherever it applies")
    p.add_argument("--search-formats", action="store_true",
                   help="choose formats by the error of the final logits on the calibration data (slower)")
    p.add_argument("--legacy-softmax", default="kwscc", choices=("kwscc", "cmsis"),
                   help="cmsis-nn-legacy backend: kwscc's integer softmax (probabilities) or arm_softmax_q7")
    p.add_argument("--input-shape", action="append", type=_input_shape, default=[], metavar="NAME=D1,D2,...",
                   help="fix the shape of an input with dynamic dimensions")
    p.add_argument("--streaming", type=_frames, metavar="FRAMES",
                   help="recurrent (LSTM/GRU) models: NAME_run takes FRAMES time steps of a stream per call and "
                        "keeps the recurrent state between calls (NAME_reset_state() restores it); the layers "
                        "after the recurrent ones run on every call on its current state, so the last call of a "
                        "clip gives the whole clip's output bit for bit; validate then feeds each clip in calls "
                        "of FRAMES frames")
    p.add_argument("--no-raise-recurrent", dest="raise_recurrent", action="store_false",
                   help="keep unrolled recurrent cells as the model's plain ops (Dense, Sigmoid, Mul, ...) instead "
                        "of one LSTM/GRU layer: slower and larger, for comparing with the raised layer or working "
                        "around a cell kwscc raises wrongly")
    _common_options(p)


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v: each step as it starts; -vv: debug")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when it is a terminal)")


class _PrintCmakeDir(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(Path(__file__).resolve().parent / "cmake")
        parser.exit()


def build_parser(command: str) -> argparse.ArgumentParser:
    if command == "validate":
        p = Parser(prog="kwscc validate", description="compile, build for the host, run and compare")
        _compile_options(p)
        p.add_argument("--data", required=True, metavar="DATA", help="samples to validate on")
        p.add_argument("--labels", metavar="KEY", help="labels: a key of the --data .npz, or FILE.npy / FILE.npz:KEY")
        p.add_argument("--label-names", metavar="FILE",
                       help="class names, one per line in output order (e.g. examples/kws/labels.txt): "
                            "rows and columns of the confusion matrix")
        p.add_argument("--json", metavar="FILE", help="write the results as JSON")
        p.add_argument("--sanitize", action="store_true", help="build the host program with ASan and UBSan")
        p.add_argument("--target", default="host",
                       choices=("host", "cortex-m3", "cortex-m4", "cortex-m33", "cortex-m55"),
                       help="run the C on this machine (host) or on an emulated Cortex-M core (QEMU)")
        p.add_argument("--cmsis-nn", metavar="DIR", help="build against this CMSIS-NN checkout instead of kwscc's host kernels")
        p.add_argument("--cmsis-5", metavar="DIR",
                       help="--backend cmsis-nn-legacy: build against this CMSIS_5 checkout's CMSIS/NN (<= 5.9.0)")
        p.add_argument("--reference", metavar="FLOAT_MODEL", help="also compare with this float model")
        p.add_argument("--split", metavar="KEY",
                       help="per-sample split ids (a key of the --data .npz, or FILE.npy / FILE.npz:KEY): "
                            "accuracies and confusion matrices per split")
        return p
    if command == "sweep":
        p = Parser(prog="kwscc sweep",
                                    description="float accuracy against weight bit width and weight noise")
        p.add_argument("model", help="model file (.onnx or .tflite)")
        p.add_argument("--data", required=True, metavar="DATA", help="samples to evaluate on")
        p.add_argument("--labels", required=True, metavar="KEY", help="labels: a key of the --data .npz, or FILE")
        p.add_argument("--bits", default="16,8,4,3,2,1", help="weight bit widths, comma separated")
        p.add_argument("--noise", default="0,0.04,0.06,0.08,0.1,0.16",
                       help="weight noise standard deviations, relative to each tensor's max |w|")
        p.add_argument("--rule", default="mse", choices=("mse", "max"),
                       help="weight formats at b bits: mse = kwscc's (per channel, least squared error), "
                            "max = the seed's (per tensor, (b-1) - ceil(log2 max|w|))")
        p.add_argument("--draws", type=int, default=5, help="noise draws averaged per level")
        p.add_argument("--seed", type=int, default=0, help="random seed of the noise")
        p.add_argument("--out", metavar="DIR", help="write DIR/sweep.csv and DIR/sweep.svg")
        p.add_argument("--input-shape", action="append", type=_input_shape, default=[], metavar="NAME=D1,D2,...")
        _common_options(p)
        return p
    if command == "report":
        p = Parser(prog="kwscc report", description="RAM, flash and MACs per layer (--calib optional: without it "
                                                    "the formats are placeholders, the sizes and MACs exact)")
        _compile_options(p)
        p.add_argument("--json", metavar="FILE", help="write the report as JSON")
        p.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
        p.add_argument("--svg", metavar="FILE", help="write the memory timeline (arena occupancy per layer) as SVG")
        return p
    if command == "supported-ops":
        return Parser(prog="kwscc supported-ops", description="ONNX ops and backend constraints")
    p = Parser(
        prog="kwscc",
        description="Compile an ONNX or TFLite model to C calling CMSIS-NN (`kwscc compile MODEL ...` is the same). "
                    "Subcommands: " + ", ".join(SUBCOMMANDS),
        epilog="kwscc validate --help, kwscc report --help for the subcommands",
    )
    _compile_options(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    p.add_argument("--with-host-kernels", action="store_true",
                   help="also write OUT/cmsis_nn_host/: kwscc's host implementation of the CMSIS-NN calls")
    p.add_argument("--cmsis-nn", metavar="DIR",
                   help="list the CMSIS-NN files the model calls by scanning this checkout (for --cpu's build) and "
                        "copy them, with the headers, into OUT/cmsis_nn/")
    p.add_argument("--version", action="version", version=f"kwscc {__version__}")
    p.add_argument("--cmake-dir", action=_PrintCmakeDir, nargs=0,
                   help="print the folder holding kwsccConfig.cmake (find_package(kwscc CONFIG) with -Dkwscc_DIR=...) and exit")
    return p


def _options(args, argv):
    from kwscc.command import recorded_command
    from kwscc.driver import CompileOptions

    return CompileOptions(calib=args.calib, name=args.name, backend=args.backend, rounding=args.rounding,
                          cpu=args.cpu, weights=args.weights, calib_method=args.calib_method,
                          ranges_file=args.ranges, legacy_softmax=args.legacy_softmax,
                          bias_correction=args.bias_correction, unsigned_relu=args.unsigned_relu,
                          input_zero_point=args.input_zero_point, split_input=args.split_input,
                          search_formats=args.search_formats, optimize=args.optimize, kernels=args.kernels,
                          input_shapes=dict(args.input_shape), streaming=args.streaming,
                          raise_recurrent=args.raise_recurrent, command=recorded_command(argv))


def _write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise KwsccError(f"cannot write {path}: {exc}") from None


def cmd_compile(args, argv) -> int:
    from kwscc.build_files import build_files
    from kwscc.driver import compile_model, output_files, write_outputs
    from kwscc.report.report import build_report, format_table, report_files

    if args.cmsis_nn:  # a wrong folder fails before the compile, not after it
        from kwscc.validate.cmsis_nn import checkout

        checkout(args.cmsis_nn)
    compiled = compile_model(args.model, _options(args, argv))
    with progress.step("building the report"):
        report = build_report(compiled)
    files = output_files(compiled, args.with_host_kernels, report_files(compiled, report))
    host_kernels = compiled.backend.host_files(compiled.qm.rounding) if args.with_host_kernels else None
    files.update(build_files(compiled, host_kernels, args.cmsis_nn))
    write_outputs(files, args.output)
    print(format_table(report))
    build = [f for f in (f"{compiled.name}.cmake", f"{compiled.name}.mk") if f in files]
    print(f"\nwrote {', '.join(sorted(compiled.files) + build)} and {compiled.name}_report.json/.md/.svg to {args.output}")
    return 0


def cmd_report(args, argv) -> int:
    from kwscc.driver import compile_model
    from kwscc.report.report import build_report, format_markdown, format_table, to_json

    options = _options(args, argv)
    options.provisional_formats = True  # RAM, flash and MACs need no data: a float model may come without --calib
    compiled = compile_model(args.model, options)
    with progress.step("building the report"):
        report = build_report(compiled)
    print(format_table(report))
    if args.json:
        _write_text(args.json, to_json(report))
    if args.markdown:
        _write_text(args.markdown, format_markdown(report, Path(args.svg).name if args.svg else None))
    if args.svg:
        from kwscc.report.svg import render_svg

        _write_text(args.svg, render_svg(report))
    return 0


def cmd_validate(args, argv) -> int:
    from kwscc.backends.base import get_backend
    from kwscc.driver import compile_model
    from kwscc.frontends import read_model
    from kwscc.report.report import to_json
    from kwscc.validate.validate import format_summary, read_label_names, validate

    label_names = read_label_names(args.label_names) if args.label_names else None
    if label_names and not args.labels:
        raise KwsccError("--label-names names the classes of --labels: give --labels too")
    options = _options(args, argv)
    legacy = options.backend == "cmsis-nn-legacy"
    if args.cmsis_5 and not legacy or args.cmsis_nn and legacy:
        raise KwsccError("--cmsis-5 DIR is CMSIS_5's legacy q7 API, for --backend cmsis-nn-legacy; --cmsis-nn DIR "
                         "is ARM-software/CMSIS-NN, for the cmsis-nn backend")
    if args.cmsis_5 or args.cmsis_nn:  # a wrong folder fails before the compile
        get_backend(options.backend).open_library(args.cmsis_5 or args.cmsis_nn)
    if args.sanitize and args.target != "host":
        raise KwsccError(f"--sanitize builds with the host compiler's ASan and UBSan: --target host only, not {args.target}")
    if args.target != "host" and not any(a == "--cpu" or a.startswith("--cpu=") for a in argv):
        options.cpu = args.target  # scratch sized for the CMSIS-NN build of the core it runs on
    if options.calib is None and not read_model(args.model, options.input_shapes).recorded_ranges:
        logging.getLogger("kwscc").warning("no --calib given: calibrating on the validation data")
        options.calib = args.data
    result = validate(compile_model(args.model, options), args.data, args.labels, sanitize=args.sanitize,
                      target=args.target, cmsis_nn_dir=args.cmsis_5 if legacy else args.cmsis_nn,
                      reference=args.reference, split_spec=args.split, label_names=label_names)
    print(format_summary(result))
    if args.json:
        _write_text(args.json, to_json(result))
    return 0 if result["c_vs_simulator_mismatches"] == 0 else 1


def cmd_supported_ops(args, argv) -> int:
    from kwscc.backends.cmsis_nn.constraints import describe
    from kwscc.backends.cmsis_nn_legacy.constraints import describe as legacy_describe
    from kwscc.frontends import onnx_reader, tflite_reader

    print(f"ONNX ops (opsets {onnx_reader.MIN_OPSET}-{onnx_reader.MAX_OPSET}; {onnx_reader.OLDEST_CONVERTIBLE}-"
          f"{onnx_reader.MIN_OPSET - 1} converted on load): " + ", ".join(onnx_reader.supported_ops()))
    print("TFLite builtin ops: " + ", ".join(tflite_reader.supported_ops()))
    for backend, rows in (("cmsis-nn", describe()), ("cmsis-nn-legacy", legacy_describe())):
        print(f"\n{backend} backend (ops after kwscc's passes; each with how it runs and its limits):")
        for op, text in rows:
            print(f"  {op:12s} {text}")
    return 0


def cmd_sweep(args, argv) -> int:
    from kwscc.data import load_inputs
    from kwscc.frontends import read_model
    from kwscc.passes import run_pipeline
    from kwscc.quant.sweep import format_table, parse_numbers, svg_plot, sweep, write_csv
    from kwscc.validate.validate import _labels

    bits = parse_numbers(args.bits, int, "bits")
    if any(b < 1 or b > 32 for b in bits):
        raise KwsccError("--bits: widths must be between 1 and 32")
    noise = parse_numbers(args.noise, float, "noise")
    if any(s < 0 for s in noise):
        raise KwsccError("--noise: standard deviations must be >= 0")
    if args.draws < 1:
        raise KwsccError("--draws must be at least 1")
    with progress.step(f"reading {Path(args.model).name}"):
        graph = run_pipeline(read_model(args.model, dict(args.input_shape)))
    feeds = load_inputs(args.data, graph)
    labels = _labels(args.labels, args.data, next(iter(feeds.values())).shape[0])
    with progress.bar(len(bits) + len(noise), "sweeping", unit="setting") as shown:
        rows = sweep(graph, feeds, labels, bits, noise, args.draws, args.seed, rule=args.rule,
                     progress=lambda row: shown.update(1))
    print(format_table(rows))
    if args.out:
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_csv(out / "sweep.csv", rows)
            (out / "sweep.svg").write_text(svg_plot(rows, f"{Path(args.model).name}: weights only, activations float"))
        except OSError as exc:
            raise KwsccError(f"cannot write to {out}: {exc}") from None
        print(f"\nwrote {out / 'sweep.csv'} and {out / 'sweep.svg'}")
    return 0


COMMANDS = {"validate": cmd_validate, "report": cmd_report, "sweep": cmd_sweep, "supported-ops": cmd_supported_ops}


def _on_sigterm(signum, frame):
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _logging(verbose: int):
    """kwscc's log (and Python warnings) on stderr. Without -v, warnings are held until the command
    succeeds: a failing command prints its one error line and nothing else."""
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(logging.Formatter("kwscc: %(levelname)s: %(message)s"))
    handler = out if verbose else logging.handlers.MemoryHandler(1 << 20, logging.CRITICAL + 1, out, flushOnClose=False)
    loggers = [logging.getLogger("kwscc"), logging.getLogger("py.warnings")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield handler
    finally:
        logging.captureWarnings(False)
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
        if handler is not out:
            handler.buffer.clear()  # what a failed command held is dropped, also at interpreter exit
        handler.close()


def _error(text: str) -> None:
    """One line on stderr, whatever the message holds (newlines, a model's control characters)."""
    print(printable(" ".join(str(text).split())), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "compile"
    rest = argv[1:] if argv and argv[0] == command else argv
    verbose = sum(a.count("v") for a in argv if a in ("-v", "-vv", "-vvv", "--verbose"))
    with _logging(verbose) as log_handler, _sigterm_as_interrupt():
        try:
            args = build_parser(command).parse_args(rest)
            progress.configure(getattr(args, "progress", None))
            with progress.logging_above_bars():
                status = COMMANDS.get(command, cmd_compile)(args, argv)
            if isinstance(log_handler, logging.handlers.MemoryHandler):
                log_handler.flush()  # the command ran: show the warnings it held
            return status
        except KwsccError as exc:
            _error(f"kwscc: error: {exc}")
            return exc.exit_code
        except Terminated:
            _error("kwscc: terminated")
            return 128 + signal.SIGTERM
        except KeyboardInterrupt:
            _error("kwscc: interrupted")
            return 130
        except Exception as exc:  # a bug in kwscc: one line for the user, the trace with -vv
            if isinstance(exc, OSError) and exc.filename is not None:
                # a path the user gave that the system refuses (name too long, a symlink loop, no permission)
                _error(f"kwscc: error: {str(exc.filename)[:200]}: {exc.strerror}")
                return KwsccError.exit_code
            if verbose > 1:
                traceback.print_exc()
            _error(f"kwscc: internal error: {type(exc).__name__}: {exc} (rerun with -vv for details)")
            return 3


if __name__ == "__main__":
    sys.exit(main())
