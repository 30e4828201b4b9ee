import Foundation
import Testing

/// docs/LIMITS.md must name every timeout and limit constant of the code.
@Suite struct LimitsDocTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func constants(in file: String, type: String) throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        var names: [String] = []
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("public static let ") else { continue }
            let rest = t.dropFirst("public static let ".count)
            let name = rest.prefix { $0.isLetter || $0.isNumber }
            names.append(type + "." + name)
        }
        return names
    }

    @Test(arguments: [
        ("Sources/Roles/Common/Limits.swift", "Limits"),
        ("Sources/Mux/MuxLimits.swift", "MuxLimits"),
        ("Sources/E2E/E2EContext.swift", "E2ELimits"),
    ])
    func everyConstantIsDocumented(file: String, type: String) throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/LIMITS.md"), encoding: .utf8)
        let names = try Self.constants(in: file, type: type)
        #expect(!names.isEmpty)
        for n in names {
            let short = n.split(separator: ".").last.map(String.init) ?? n
            #expect(doc.contains(n) || doc.contains("`" + short + "`"), "\(n) is not in docs/LIMITS.md")
        }
    }

    @Test func relayDefaultsAreDocumented() throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/LIMITS.md"), encoding: .utf8)
        for n in ["RelayConfig.defaultListen", "RelayConfig.defaultStateDir", "RelayConfig.defaultDrainTimeoutMs",
                  "RelayConfig.goawayRetryAfterMs"] {
            #expect(doc.contains(n), "\(n) is not in docs/LIMITS.md")
        }
    }
}
