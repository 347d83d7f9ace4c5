"""What random_init strips from a design: the initial values of its flip-flops and memories only.

A ``reg`` that no clocked process assigns is a constant (LiteX declares a stream's unused
``replace`` that way, initial value 0, never driven); yosys keeps it a constant, so a random
value there is a state the board can never be in.  CI once failed the GMII bridges from a
random state (seed 1990630619) because the receive store's ``replace`` came up 1 and the
store took no word.
"""

from __future__ import annotations

from splitnic_sim.gmii_bridge_top import write_gmii_bridge_verilog
from splitnic_sim.runner import _without_flop_initialisers, build_dir_for

VERILOG = """\
module m(input clk, input rst, output [7:0] q);
reg     [7:0] count = 8'd0;
reg           unused_replace = 1'd0;
reg           comb_next = 1'd0;
reg \\esc[1] = 1'h0;
reg [7:0] mem [0:1];
initial begin
	mem[0] = 8'd1;
	mem[1] = 8'd2;
end
always @(*) begin
	comb_next = count[0];
end
always @(posedge clk) begin
    count <= (count + 1'd1);
    if (rst) count <= 8'd0;
    \\esc[1] <= comb_next;
    mem[count[0]] <= count;
end
assign q = count + unused_replace;
endmodule
"""


def test_flops_and_memories_lose_their_initial_values_constants_keep_theirs() -> None:
    out = _without_flop_initialisers(VERILOG)
    assert "reg     [7:0] count ;" in out
    assert "reg \\esc[1] ;" in out
    assert "mem[0] = 8'd1" not in out
    assert "reg           unused_replace = 1'd0;" in out


def test_the_gmii_bridges_receive_store_keeps_its_constant_replace() -> None:
    src = write_gmii_bridge_verilog(build_dir_for("gmii_bridges", "verilator"), "snic_gmii_bridges")
    out = _without_flop_initialisers(src.read_text())
    assert "gmiirxbridge_store_replace = 1'd0;" in out
    assert "gmiirxbridge_store_produce = " not in out, "a flop kept its initial value"
