import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line progress bar with rate and ETA on standard error. When stderr is not a terminal (a log
/// file, CI) it writes a plain line every `logInterval` seconds instead, so long jobs still show progress.
public final class ProgressBar: @unchecked Sendable {
    /// Seconds between plain progress lines when stderr is not a terminal.
    public static let logInterval = 30.0
    private var total: Int
    private let label: String
    private let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool
    private let plain: Bool
    private var lastNote = ""

    /// Every bar silent (the ranks other than 0 of a distributed run).
    nonisolated(unsafe) public static var silenced = false

    /// `enabled`: nil = a bar on a terminal, plain lines otherwise; false = silent.
    public init(total: Int, label: String, unit: String = "it", enabled: Bool? = nil) {
        self.total = max(total, 1)
        self.label = label
        self.unit = unit
        self.enabled = (enabled ?? true) && !Self.silenced
        plain = enabled == nil && isatty(2) == 0
        if plain { lastDraw = start }
    }

    /// Redraws the bar for `done` units (at most ten times a second, always at the end); `note` is shown
    /// after the ETA (e.g. the current loss).
    public func update(_ done: Int, note: String = "") {
        guard enabled else { return }
        if !note.isEmpty { lastNote = note }
        let now = Date()
        if plain {
            guard done < total, now.timeIntervalSince(lastDraw) >= Self.logInterval else { return }
            lastDraw = now
            let elapsed = now.timeIntervalSince(start)
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            let eta = rate > 0 ? ProgressBar.clock(Double(total - done) / rate) : "?"
            let line = String(format: "%@: %.0f%% (%d/%d %@), %.1f %@/s, ETA %@ %@\n", label.trimmingCharacters(in: .whitespaces),
                              100 * Double(done) / Double(total), done, total, unit, rate, unit, eta, lastNote)
            FileHandle.standardError.write(Data(line.utf8))
            return
        }
        guard done >= total || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let frac = min(1, Double(done) / Double(total))
        let width = 28
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = String(format: "\r%@ %@ %3.0f%% %d/%d %@ %.1f %@/s ETA %@ %@ ", label, bar, frac * 100, done, total,
                          "·", rate, unit, ProgressBar.clock(eta), lastNote)
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Redraws the bar for `done` of `total` units (a total learned once work starts).
    public func update(_ done: Int, total: Int, note: String = "") {
        self.total = max(total, 1)
        update(done, note: note)
    }

    /// Ends the line.
    public func finish() {
        guard enabled, !plain else { return }
        update(total, note: lastNote)
        FileHandle.standardError.write(Data("\n".utf8))
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
