import Foundation
import Testing
@testable import PruneFramework

/// SHA-256 against FIPS 180-4 test vectors, streaming in uneven pieces, and files.
@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func knownVectors(input: String, digest: String) {
        #expect(SHA256.hex(Data(input.utf8)) == digest)
    }

    @Test func aMillionAsInUnevenPiecesMatchTheStandardVector() {
        var s = SHA256()
        var left = 1_000_000, piece = 1
        while left > 0 {
            let n = min(piece, left)
            s.update(Data(repeating: 0x61, count: n))
            left -= n
            piece = piece * 3 % 1009 + 1
        }
        #expect(s.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func aFileHashesLikeItsBytesAndAMissingFileIsNamed() throws {
        let path = NSTemporaryDirectory() + "sha-\(UUID().uuidString)"
        let bytes = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try SHA256.hex(file: path) == SHA256.hex(bytes))
        let e = try #require(throws: PruneError.self) { try SHA256.hex(file: path + ".missing") }
        #expect(e.code == .fileNotFound && e.message.contains("'\(path).missing'"), "\(e.message)")
    }
}
