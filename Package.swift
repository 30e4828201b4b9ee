// swift-tools-version:6.0
//
// agent: one static binary, three roles (relay, reverse, forward).
//
// Module dependency direction (checked by the compiler):
//   agent -> Roles -> {Loop, Mux, E2E, Crypto, Wire};  Mux -> Wire;  E2E -> {Crypto, Wire};
//   Crypto -> {CShims, Wire};  Loop -> {CShims, Wire}.
// (Wire is the base of plain byte types, with no I/O: Crypto uses its ByteQueue and AgentID,
// Loop its address text form.)
// Wire, Mux and E2E never touch a socket, a syscall or the clock.
//
// This manifest is the host build (full Swift, tests). It links the same mbedTLS 3.6 as the
// release binaries, built by `make host-mbedtls` into .build-cross/host/mbedtls with the
// project's configuration (cross/host.mk): run that once before `swift build`; `make host`
// and `make unit` do. The static Embedded release builds compile the same Sources through
// the Makefile (see cross/).
import PackageDescription

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
        .target(name: "Wire", swiftSettings: swift5),
        .target(name: "Mux", dependencies: ["Wire"], swiftSettings: swift5),
        .target(name: "Crypto", dependencies: ["CShims", "Wire"], swiftSettings: swift5),
        .target(name: "E2E", dependencies: ["Crypto", "Wire"], swiftSettings: swift5),
        .target(name: "Loop", dependencies: ["CShims", "Wire"], swiftSettings: swift5),
        .target(
            name: "Roles", dependencies: ["Loop", "Mux", "E2E", "Crypto", "Wire"],
            swiftSettings: swift5),
        .executableTarget(
            name: "agent", dependencies: ["Roles", "Loop", "Crypto", "Wire"],
            swiftSettings: swift5 + [.unsafeFlags(["-parse-as-library"])]),

        .testTarget(name: "WireTests", dependencies: ["Wire"], swiftSettings: swift5),
        .testTarget(name: "MuxTests", dependencies: ["Mux", "Wire"], swiftSettings: swift5),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto", "CShims"], swiftSettings: swift5),
        .testTarget(name: "E2ETests", dependencies: ["E2E", "Crypto", "Wire"], swiftSettings: swift5),
        .testTarget(name: "LoopTests", dependencies: ["Loop", "CShims"], swiftSettings: swift5),
        .testTarget(
            name: "RolesTests", dependencies: ["Roles", "Loop", "Mux", "E2E", "Crypto", "Wire"],
            swiftSettings: swift5),
    ]
)
