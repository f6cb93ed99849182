import MusterAgent
import MusterLoadBalancer

extension AgentComponents {
    /// What `muster-agent` registers (MusterAgentCommand): the config file format as it ships,
    /// the LB controller's `lb:` section included.
    static let musterAgent = try! AgentComponents.standard.registering(AgentConfig.LoadBalancerConfig.self)
}
