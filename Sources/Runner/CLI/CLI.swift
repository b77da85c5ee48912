import Foundation
import PruneFramework

/// The `prune` command line: parses arguments and runs one subcommand.
public enum CLI {
    static let usage = """
    prune — structured pruning of LLaMA-family models

    usage:
      prune inspect MODEL.gguf [--json]
      prune eval --model M --dataset wikitext2|ptb|ptb-sparsegpt|FILE [--seq-len 128] [--max-windows N]
                 [--batch B] [--data-dir DIR] [--numerics f32|llamacpp] [--json]
      prune eval --model M --tasks boolq,piqa,hellaswag,winogrande,arc_easy,arc_challenge,openbookqa [--limit N] [--scoring auto|cached|batched] [--json]
      prune tokenize --model M --input FILE --ids-out OUT.i32
      prune generate --model M --prompt TEXT [--max-tokens 64] [--temperature 0.7] [--top-p 0.9] [--seed 0] [--chat]
      prune bench matmul [--json] [--min-seconds 0.3]
      prune bench forward --model M [--batch 8] [--seq-len 128] [--iterations 3] [--json]
      prune bench backward --model M [--batch 8] [--seq-len 128] [--micro-batch 8] [--iterations 3] [--json]
      prune run RECIPE.json [--output-dir D] [--data-dir DIR] [--from-cache]
      mpirun -np N prune run RECIPE.json ...   (the same run over N processes; --distributed auto|mpi|off)
      prune validate RECIPE.json
      prune list [--json]
      prune schema
      prune mpi-check   (checks the MPI setup; with MPI: mpirun -np 2 prune mpi-check)
    """

    /// Runs `prune` with `argv` (without the program name); returns the exit status.
    public static func run(_ argv: [String], plugins: PluginSet = .builtins()) -> Int32 {
        do {
            try dispatch(try World.start(argv), plugins: plugins)
            World.finish()
            return 0
        } catch let e as PruneError {
            return World.fail(e.message, code: e.code == .invalidArgument || e.code == .unknownName ? 2 : 1)
        } catch {
            return World.fail(error.localizedDescription, code: 1)
        }
    }

    static func dispatch(_ argv: [String], plugins: PluginSet = .builtins()) throws {
        guard let cmd = argv.first else {
            print(usage)
            return
        }
        let rest = Array(argv.dropFirst())
        switch cmd {
        case "inspect": try InspectCommand.run(rest)
        case "eval": try EvalCommand.run(rest)
        case "tokenize": try TokenizeCommand.run(rest)
        case "generate": try GenerateCommand.run(rest)
        case "bench": try BenchCommand.run(rest)
        case "run": try RecipeCommands.run(rest, plugins: plugins)
        case "validate": try RecipeCommands.validate(rest, plugins: plugins)
        case "list": try RecipeCommands.list(rest, plugins: plugins)
        case "schema": try RecipeCommands.printSchema(rest, plugins: plugins)
        case "mpi-check": try MPICheckCommand.run(rest)
        case "help", "--help", "-h": print(usage)
        default:
            throw PruneError(.invalidArgument, "unknown command '\(cmd)'; commands: inspect, eval, tokenize, generate, bench, run, validate, list, schema, mpi-check, help")
        }
    }

    /// Prints a Codable value as one JSON object on standard output.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = try enc.encode(value)
        print(String(decoding: data, as: UTF8.self))
    }

    static func log(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}
