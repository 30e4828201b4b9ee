import Loop
@testable import Roles
import Testing
import Wire

/// The device's allow list, checked before any DNS query (review finding 10).
@Suite struct AllowListTests {
    static func list(_ rules: [String]) -> AllowList { AllowList(rules: rules.map { HostPort.parse($0, allowWildcard: true)! }) }
    static func target(_ t: String) -> HostPort { HostPort.parse(t)! }

    @Test func aNameNoRuleCanAllowIsDeniedBeforeAnyLookup() {
        let l = Self.list(["printer.lan:631", "127.0.0.1:*"])
        // A rule names the host: allowed whatever it resolves to.
        guard case .allowedByName = l.precheck(target: Self.target("PRINTER.lan:631")) else { Issue.record("name rule"); return }
        // A numeric rule on any port: the address decides (the name must be resolved).
        guard case .dependsOnAddress = l.precheck(target: Self.target("localhost:22")) else { Issue.record("numeric"); return }
        let strict = Self.list(["printer.lan:631", "10.0.0.5:22"])
        // The numeric rule is for port 22 only and no rule names this host: denied, no lookup.
        guard case .denied = strict.precheck(target: Self.target("evil.example:80")) else { Issue.record("denied"); return }
        guard case .denied = Self.list(["printer.lan:*"]).precheck(target: Self.target("evil.example:22")) else {
            Issue.record("names only"); return
        }
    }

    @Test func theDefaultListDependsOnTheAddress() {
        guard case .dependsOnAddress = AllowList(rules: []).precheck(target: Self.target("localhost:22")) else {
            Issue.record("default"); return
        }
        let lo = SocketAddress.numeric("127.0.0.1", port: 22)!
        let other = SocketAddress.numeric("192.0.2.1", port: 22)!
        #expect(AllowList(rules: []).allows(target: Self.target("localhost:22"), address: lo))
        #expect(!AllowList(rules: []).allows(target: Self.target("example.test:22"), address: other))
    }
}
