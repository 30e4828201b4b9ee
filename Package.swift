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
// This manifest is the host build (full Swift, Debian's libmbedtls, tests). The static
// Embedded release builds compile the same Sources through the Makefile (see cross/).
import PackageDescription

let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "agent",
    products: [
        .executable(name: "agent", targets: ["agent"]),
    ],
    targets: [
        .target(
            name: "CShims",
            linkerSettings: [
                .linkedLibrary("mbedtls"), .linkedLibrary("mbedx509"), .linkedLibrary("mbedcrypto"),
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
