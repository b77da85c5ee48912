import Foundation
import PruneFramework
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `prune` does when it is interrupted (Ctrl-C, `kill`, a closed terminal): it removes the
/// temporary files of writes in progress, marks the run's `run.json` as interrupted and exits
/// with 128 + the signal number. A `kill -9` cannot be handled; the next run into the same
/// directory removes what it left.
public enum Interruption {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Installs the handlers once (later calls do nothing).
    public static func install() {
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                TemporaryFiles.removeAll()  // keeps other threads from starting a new file
                RunDirectory.interruptAll(signal: sig)
                FileHandle.standardError.write(Data("\nprune: stopped by signal \(sig)\(World.whereAmI); the output directory's run.json says 'interrupted'\n".utf8))
                exit(128 + sig)
            }
            source.resume()
            sources.append(source)
        }
    }
}
