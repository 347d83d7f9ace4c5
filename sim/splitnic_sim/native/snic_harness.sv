// The simulated NIC's native harness: snic_nic with its clock, wire, DMA memory and CSR
// initiator in C (snic_harness.cpp, through DPI-C), so no Python runs per clock cycle.
//
// Ref: docs/simulation.md ("The native harness"); IEEE Std 1800-2017 §35 (DPI).
//
// The clock runs free (Verilator --timing).  On each falling edge the C side samples the
// NIC's bus outputs, settled since the rising edge, and drives the DMA target's ack/dat_r
// and the CSR initiator for the next rising edge: the same timing as the Python models
// (hostmem.WishboneDmaTarget, wishbone.WishboneInitiator).  On each rising edge it samples
// the GMII transmitter and the interrupt line and drives the GMII receiver, as cocotbext-eth's
// GMII models do.
// `notify` toggles whenever the C side has news for Python (a CSR batch done, a frame
// captured, a descriptor readable, a wall-clock tick); cocotb waits on it, never on clk.
`timescale 1ns / 1ps

module snic_harness;
  bit clk /*verilator public_flat_rd*/ = 1'b0;
  bit notify /*verilator public_flat_rd*/ = 1'b0;
  always #4 clk = ~clk;   // 125 MHz: GMII's byte clock

  bit rst = 1'b1;
  bit [7:0] gmii_rx_d = 8'd0;
  bit gmii_rx_dv = 1'b0, gmii_rx_er = 1'b0;
  wire [7:0] gmii_tx_d;
  wire gmii_tx_en, gmii_tx_er;

  bit [9:0] csr_adr = 10'd0;
  bit [31:0] csr_dat_w = 32'd0;
  wire [31:0] csr_dat_r;
  bit [3:0] csr_sel = 4'hf;
  bit csr_cyc = 1'b0, csr_stb = 1'b0, csr_we = 1'b0;
  wire csr_ack;

  wire [29:0] dma_adr;
  wire [31:0] dma_dat_w;
  bit [31:0] dma_dat_r = 32'd0;
  wire [3:0] dma_sel;
  wire dma_cyc, dma_stb, dma_we;
  bit dma_ack = 1'b0;
  wire [2:0] dma_cti;
  wire [1:0] dma_bte;
  wire irq;

  snic_nic nic (
    .clk(clk), .rst(rst),
    .csr__adr(csr_adr), .csr__dat_w(csr_dat_w), .csr__dat_r(csr_dat_r), .csr__sel(csr_sel),
    .csr__cyc(csr_cyc), .csr__stb(csr_stb), .csr__we(csr_we), .csr__ack(csr_ack),
    .dma__adr(dma_adr), .dma__dat_w(dma_dat_w), .dma__dat_r(dma_dat_r), .dma__sel(dma_sel),
    .dma__cyc(dma_cyc), .dma__stb(dma_stb), .dma__we(dma_we), .dma__ack(dma_ack),
    .dma__cti(dma_cti), .dma__bte(dma_bte),
    .gmii_rx_d(gmii_rx_d), .gmii_rx_dv(gmii_rx_dv), .gmii_rx_er(gmii_rx_er),
    .gmii_tx_d(gmii_tx_d), .gmii_tx_en(gmii_tx_en), .gmii_tx_er(gmii_tx_er),
    .irq(irq)
  );

  import "DPI-C" function void snic_falling(
    input bit dma_cyc, input bit dma_stb, input bit dma_we, input int unsigned dma_adr,
    input int unsigned dma_dat_w, input byte unsigned dma_sel, input byte unsigned dma_cti,
    input bit csr_ack, input int unsigned csr_dat_r,
    output bit dma_ack_o, output int unsigned dma_dat_r_o,
    output bit csr_cyc_o, output bit csr_we_o, output int unsigned csr_adr_o,
    output int unsigned csr_dat_w_o);
  import "DPI-C" function bit snic_rising(
    input byte unsigned tx_d, input bit tx_en, input bit tx_er, input bit irq,
    output byte unsigned rx_d_o, output bit rx_dv_o, output bit rx_er_o, output bit rst_o);

  bit ack_n, cyc_n, we_n;
  int unsigned rdat_n, cadr_n, cdat_n;
  always @(negedge clk) begin
    snic_falling(dma_cyc, dma_stb, dma_we, {2'b0, dma_adr}, dma_dat_w, {4'b0, dma_sel}, {5'b0, dma_cti},
                 csr_ack, csr_dat_r, ack_n, rdat_n, cyc_n, we_n, cadr_n, cdat_n);
    dma_ack = ack_n;
    dma_dat_r = rdat_n;
    csr_cyc = cyc_n;
    csr_stb = cyc_n;
    csr_we = we_n;
    csr_adr = cadr_n[9:0];
    csr_dat_w = cdat_n;
  end

  byte unsigned rxd_n;
  bit rxdv_n, rxer_n, rst_n;
  always @(posedge clk) begin
    if (snic_rising(gmii_tx_d, gmii_tx_en, gmii_tx_er, irq, rxd_n, rxdv_n, rxer_n, rst_n))
      notify <= ~notify;
    gmii_rx_d <= rxd_n;
    gmii_rx_dv <= rxdv_n;
    gmii_rx_er <= rxer_n;
    rst <= rst_n;
  end
endmodule
