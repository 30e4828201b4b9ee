// swift-tools-version:6.0
//
// agent: one static binary, three roles (relay, reverse, forward).
//
// The modules and their dependencies come from Sources/modules.txt, the one list the
// release and fuzz builds read too (`make check-modules` holds every module to it).
// (Wire is the base of plain byte types, with no I/O: Crypto uses its ByteQueue and AgentID,
// Loop its address text form.)
// Wire, Mux and E2E never touch a socket, a syscall or the clock.
//
// This manifest is the host build (full Swift, tests). It links the same mbedTLS 3.6 as the
// release binaries, built by `make host-mbedtls` into .build-cross/host/mbedtls with the
// project's configuration (cross/host.mk): run that once before `swift build`; `make host`
// and `make unit` do. The static Embedded release builds compile the same Sources through
// the Makefile (see cross/).
import Foundation
import PackageDescription

/// Sources/modules.txt: "Name: Dep Dep ..." per line, in dependency order.
let modules: [(name: String, deps: [String])] = {
    let path = Context.packageDirectory + "/Sources/modules.txt"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fatalError("cannot read " + path) }
    return text.split(separator: "\n").compactMap { line in
        let l = line.trimmingCharacters(in: .whitespaces)
        guard !l.isEmpty, !l.hasPrefix("#"), let colon = l.firstIndex(of: ":") else { return nil }
        let deps = l[l.index(after: colon)...].split(separator: " ").map(String.init)
        return (String(l[..<colon]), deps)
    }
}()

let mbed = Context.packageDirectory + "/.build-cross/host/mbedtls"
// AGENT_MBEDTLS_THREADING: the tests run in parallel threads (cross/mbedtls_config.h).
let mbedInclude = [
    "-I", mbed + "/include", "-I", Context.packageDirectory + "/cross/chachapoly", "-DAGENT_MBEDTLS_THREADING",
]
let swift5: [SwiftSetting] = [
    .swiftLanguageMode(.v5), .unsafeFlags(mbedInclude.flatMap { ["-Xcc", $0] }),
]

let package = Package(
    name: "agent",
    products: [
        .executable(name: "agent", targets: ["agent"]),
    ],
    targets: [
        .target(
            name: "CShims",
            cSettings: [.unsafeFlags(mbedInclude)],
            linkerSettings: [
                .unsafeFlags(["-Xlinker", "--start-group"]
                    + ["mbedtls", "mbedx509", "mbedcrypto", "agentalt"].map { mbed + "/lib/lib\($0).a" }
                    + ["-Xlinker", "--end-group", "-lpthread"]),
            ]),
    ] + modules.map { m -> Target in
        let d = m.deps.map { Target.Dependency(stringLiteral: $0) }
        if m.name == "agent" {
            return .executableTarget(name: m.name, dependencies: d,
                                     swiftSettings: swift5 + [.unsafeFlags(["-parse-as-library"])])
        }
        return .target(name: m.name, dependencies: d, swiftSettings: swift5)
    } + modules.filter { $0.name != "agent" }.map { m -> Target in
        // A module's tests may import it and what it imports.
        .testTarget(name: m.name + "Tests", dependencies: ([m.name] + m.deps).map { Target.Dependency(stringLiteral: $0) },
                    swiftSettings: swift5)
    }
)
