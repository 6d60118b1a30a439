// Package natsconf holds no code: its tests start a nats-server from
// scripts/nats-server.conf and check that each of its users (betasync, api,
// pod, admin) can do its job on the bus and nothing more.
package natsconf
