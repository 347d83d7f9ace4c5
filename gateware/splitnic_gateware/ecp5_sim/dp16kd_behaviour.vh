// Behaviour of the ECP5 DP16KD block RAM, for simulating yosys netlists.
//
// Ref: Lattice FPGA-TN-02204 "ECP5 and ECP5-5G Memory Usage Guide", sysMEM EBR: DP16KD
// (true dual port) and PDPW16KD (pseudo dual port, which yosys builds from a DP16KD);
// how yosys drives it: share/lattice/brams_16kd.txt and brams_map_16kd.v.
//
// yosys ships DP16KD as a blackbox (share/lattice/cells_sim_ecp5.v); splitnic_gateware.netlist
// pastes this body into that module, so the ports and parameters are yosys's own.  It covers
// the modes yosys's memory mapping uses: data widths 1, 2, 4, 9, 18 and 36 (36 only as the
// write port A and read port B of a PDPW16KD), NOREG outputs, WRITEMODE NORMAL /
// WRITETHROUGH / READBEFOREWRITE, SYNC or ASYNC output reset, CSDECODE 0b000.  Anything else
// stops the simulation with a message rather than simulating a guess.
//
// The array is 18 432 bits, 2048 9-bit bytes.  A x9 word is one byte (address AD[13:3]), a x18
// word two (AD[13:4]; AD[1:0] enable them on a write), a x36 word four (AD[13:5]; ADA[3:0]),
// DIA/DOA carrying the low half and DIB/DOB the high.  The x1, x2 and x4 words (AD[13:0],
// AD[13:1], AD[13:2]) use the 8 data bits of each byte, not the ninth.  A read and a write of
// the same bits on different ports in the same cycle read X (the data sheet leaves it
// undefined); with Verilator's --x-assign unique that is a random value.
// At configuration the array holds INITVAL_00..3F (16 words of 18 bits, each in a 20-bit slot,
// per parameter); under SPLITNIC_RANDOM_INIT an all-zero INITVAL is not loaded, so the array
// starts random like after a warm reset (a block with contents, a ROM, keeps them).

	wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
	wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
	wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
	wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};

	reg [18431:0] splitnic_bits;
	reg [17:0] doa_q;
	reg [35:0] b_word_q;

	function integer log2_width(input integer width);
		log2_width = width == 1 ? 0 : width == 2 ? 1 : width == 4 ? 2 : width == 9 ? 3 : width == 18 ? 4 : 5;
	endfunction
	// The first array bit of the word at ``ad``: x9 and wider words are contiguous 9-bit bytes;
	// a narrower word lies in one byte's 8 data bits.
	function integer first_bit(input integer width, input [13:0] ad);
		integer word, data_bit;
		begin
			word = ad >> log2_width(width);
			if (width >= 9) begin
				first_bit = word * width;
			end else begin
				data_bit = word * width;
				first_bit = (data_bit / 8) * 9 + data_bit % 8;
			end
		end
	endfunction
	// Byte enables of a write (x9 and narrower: the whole word).
	function [3:0] byte_enables(input integer width, input [13:0] ad);
		byte_enables = width == 18 ? {2'b00, ad[1:0]} : width == 36 ? ad[3:0] : 4'b1111;
	endfunction
	// Do the bits a write of ``w_width`` at ``w_first`` enables meet the bits a read of ``r_width`` at ``r_first``?
	function overlap(input integer w_first, input integer w_width, input [3:0] w_be,
	                 input integer r_first, input integer r_width);
		integer m, lo, hi;
		begin
			overlap = 1'b0;
			for (m = 0; m < 4; m = m + 1) begin
				lo = w_first + 9 * m;
				hi = w_width < 9 ? w_first + w_width : (9 * m < w_width ? lo + 9 : lo);
				if ((m == 0 || w_width >= 18) && w_be[m] && lo < r_first + r_width && r_first < hi)
					overlap = 1'b1;
			end
		end
	endfunction

	wire clka = CLKAMUX == "INV" ? ~CLKA : CLKA;
	wire clkb = CLKBMUX == "INV" ? ~CLKB : CLKB;
	// CSDECODE 0b000 selects the block when CS[2:0] == 0 (the only decode yosys emits).
	wire sela = {CSA2, CSA1, CSA0} == 3'b000;
	wire selb = {CSB2, CSB1, CSB0} == 3'b000;
	function [319:0] initval_row(input integer row);
		case (row)
			 0: initval_row = INITVAL_00;   1: initval_row = INITVAL_01;   2: initval_row = INITVAL_02;   3: initval_row = INITVAL_03;
			 4: initval_row = INITVAL_04;   5: initval_row = INITVAL_05;   6: initval_row = INITVAL_06;   7: initval_row = INITVAL_07;
			 8: initval_row = INITVAL_08;   9: initval_row = INITVAL_09;  10: initval_row = INITVAL_0A;  11: initval_row = INITVAL_0B;
			12: initval_row = INITVAL_0C;  13: initval_row = INITVAL_0D;  14: initval_row = INITVAL_0E;  15: initval_row = INITVAL_0F;
			16: initval_row = INITVAL_10;  17: initval_row = INITVAL_11;  18: initval_row = INITVAL_12;  19: initval_row = INITVAL_13;
			20: initval_row = INITVAL_14;  21: initval_row = INITVAL_15;  22: initval_row = INITVAL_16;  23: initval_row = INITVAL_17;
			24: initval_row = INITVAL_18;  25: initval_row = INITVAL_19;  26: initval_row = INITVAL_1A;  27: initval_row = INITVAL_1B;
			28: initval_row = INITVAL_1C;  29: initval_row = INITVAL_1D;  30: initval_row = INITVAL_1E;  31: initval_row = INITVAL_1F;
			32: initval_row = INITVAL_20;  33: initval_row = INITVAL_21;  34: initval_row = INITVAL_22;  35: initval_row = INITVAL_23;
			36: initval_row = INITVAL_24;  37: initval_row = INITVAL_25;  38: initval_row = INITVAL_26;  39: initval_row = INITVAL_27;
			40: initval_row = INITVAL_28;  41: initval_row = INITVAL_29;  42: initval_row = INITVAL_2A;  43: initval_row = INITVAL_2B;
			44: initval_row = INITVAL_2C;  45: initval_row = INITVAL_2D;  46: initval_row = INITVAL_2E;  47: initval_row = INITVAL_2F;
			48: initval_row = INITVAL_30;  49: initval_row = INITVAL_31;  50: initval_row = INITVAL_32;  51: initval_row = INITVAL_33;
			52: initval_row = INITVAL_34;  53: initval_row = INITVAL_35;  54: initval_row = INITVAL_36;  55: initval_row = INITVAL_37;
			56: initval_row = INITVAL_38;  57: initval_row = INITVAL_39;  58: initval_row = INITVAL_3A;  59: initval_row = INITVAL_3B;
			60: initval_row = INITVAL_3C;  61: initval_row = INITVAL_3D;  62: initval_row = INITVAL_3E;  63: initval_row = INITVAL_3F;
			default: initval_row = 320'd0;
		endcase
	endfunction

	localparam [0:0] HAS_INIT = |{INITVAL_00, INITVAL_01, INITVAL_02, INITVAL_03, INITVAL_04, INITVAL_05, INITVAL_06, INITVAL_07,
	                             INITVAL_08, INITVAL_09, INITVAL_0A, INITVAL_0B, INITVAL_0C, INITVAL_0D, INITVAL_0E, INITVAL_0F,
	                             INITVAL_10, INITVAL_11, INITVAL_12, INITVAL_13, INITVAL_14, INITVAL_15, INITVAL_16, INITVAL_17,
	                             INITVAL_18, INITVAL_19, INITVAL_1A, INITVAL_1B, INITVAL_1C, INITVAL_1D, INITVAL_1E, INITVAL_1F,
	                             INITVAL_20, INITVAL_21, INITVAL_22, INITVAL_23, INITVAL_24, INITVAL_25, INITVAL_26, INITVAL_27,
	                             INITVAL_28, INITVAL_29, INITVAL_2A, INITVAL_2B, INITVAL_2C, INITVAL_2D, INITVAL_2E, INITVAL_2F,
	                             INITVAL_30, INITVAL_31, INITVAL_32, INITVAL_33, INITVAL_34, INITVAL_35, INITVAL_36, INITVAL_37,
	                             INITVAL_38, INITVAL_39, INITVAL_3A, INITVAL_3B, INITVAL_3C, INITVAL_3D, INITVAL_3E, INITVAL_3F};
	localparam WIDTH_OK_A = DATA_WIDTH_A == 1 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9 ||
	                        DATA_WIDTH_A == 18 || DATA_WIDTH_A == 36;
	localparam WIDTH_OK_B = DATA_WIDTH_B == 1 || DATA_WIDTH_B == 2 || DATA_WIDTH_B == 4 || DATA_WIDTH_B == 9 ||
	                        DATA_WIDTH_B == 18 || DATA_WIDTH_B == 36;

	integer i, j;
	reg [319:0] row;
	initial begin
		// Contents for the narrow widths would need Lattice's INITVAL layout for them: not modelled.
		if (!(WIDTH_OK_A && WIDTH_OK_B && REGMODE_A == "NOREG" && REGMODE_B == "NOREG" &&
		      CSDECODE_A == "0b000" && CSDECODE_B == "0b000" && (RESETMODE == "SYNC" || RESETMODE == "ASYNC") &&
		      !(HAS_INIT && (DATA_WIDTH_A < 9 || DATA_WIDTH_B < 9)))) begin
			$display("DP16KD %m: mode not modelled (widths %0d/%0d, REGMODE %s/%s, CSDECODE %s/%s, RESETMODE %s, INITVAL %s)",
			         DATA_WIDTH_A, DATA_WIDTH_B, REGMODE_A, REGMODE_B, CSDECODE_A, CSDECODE_B, RESETMODE,
			         HAS_INIT ? "set" : "zero");
			$finish;
		end
`ifdef SPLITNIC_RANDOM_INIT
		if (HAS_INIT)
`endif
		begin
			// INITVAL_rr holds 18-bit words 16r..16r+15, each in a 20-bit slot.
			for (i = 0; i < 64; i = i + 1)
				for (j = 0; j < 16; j = j + 1)
					begin row = initval_row(i); splitnic_bits[18 * (16 * i + j) +: 18] = row[20 * j +: 18]; end
		end
`ifndef SPLITNIC_RANDOM_INIT
		doa_q = 18'd0;
		b_word_q = 36'd0;
`endif
	end

	wire a_on = CEA && sela;
	wire b_on = CEB && selb;
	wire [3:0] a_be = byte_enables(DATA_WIDTH_A, ada);
	wire [3:0] b_be = byte_enables(DATA_WIDTH_B, adb);
	wire [31:0] a_first = first_bit(DATA_WIDTH_A, ada);
	wire [31:0] b_first = first_bit(DATA_WIDTH_B, adb);
	// One port reads bits the other writes in the same cycle (they share a clock net).
	wire same_clock = CLKA === CLKB && CLKAMUX == CLKBMUX;
	wire a_reads_b_write = same_clock && a_on && b_on && WEB && overlap(b_first, DATA_WIDTH_B, b_be, a_first, DATA_WIDTH_A);
	wire b_reads_a_write = same_clock && a_on && b_on && WEA && overlap(a_first, DATA_WIDTH_A, a_be, b_first, DATA_WIDTH_B);

	// The output latches: cleared by RST (at once with RESETMODE ASYNC, at the clock edge with
	// SYNC, whatever CE), else loaded by an enabled access.  A write takes place whatever RST.
	wire rsta_async = RESETMODE == "ASYNC" && RSTA;
	wire rstb_async = RESETMODE == "ASYNC" && RSTB;

	// Port A (the x36 write port of a PDPW16KD takes its high half on DIB).
	wire [35:0] a_wdata = DATA_WIDTH_A == 36 ? {dib, dia} : {18'd0, dia};
	wire [35:0] a_old = DATA_WIDTH_A >= 9 ? {{18{1'b0}}, splitnic_bits[a_first +: 18]} | (DATA_WIDTH_A == 36 ? {splitnic_bits[a_first + 18 +: 18], 18'd0} : 36'd0)
	                                      : {32'd0, splitnic_bits[a_first +: 4]};
	wire [35:0] a_mask = (36'd1 << DATA_WIDTH_A) - 36'd1;
	integer wa;
	always @(posedge clka) begin
		if (a_on && WEA)
			for (wa = 0; wa < DATA_WIDTH_A; wa = wa + 1)
				if (a_be[DATA_WIDTH_A >= 18 ? wa / 9 : 0]) splitnic_bits[a_first + wa] <= a_wdata[wa];
	end
	always @(posedge clka or posedge rsta_async) begin
		if (RSTA) begin
			doa_q <= 18'd0;
		end else if (a_on) begin
			if (WEA) begin
				if (WRITEMODE_A == "WRITETHROUGH") doa_q <= a_wdata[17:0] & a_mask[17:0];
				else if (WRITEMODE_A == "READBEFOREWRITE") doa_q <= a_old[17:0] & a_mask[17:0];
			end else if (DATA_WIDTH_A != 36) begin
				doa_q <= a_reads_b_write ? 18'bx : a_old[17:0] & a_mask[17:0];
			end
		end
	end

	// Port B (the x36 read port of a PDPW16KD puts its low half on DOA).
	wire [35:0] b_wdata = {18'd0, dib};
	wire [35:0] b_old = DATA_WIDTH_B >= 9 ? {{18{1'b0}}, splitnic_bits[b_first +: 18]} | (DATA_WIDTH_B == 36 ? {splitnic_bits[b_first + 18 +: 18], 18'd0} : 36'd0)
	                                      : {32'd0, splitnic_bits[b_first +: 4]};
	wire [35:0] b_mask = (36'd1 << DATA_WIDTH_B) - 36'd1;
	integer wb;
	always @(posedge clkb) begin
		if (b_on && WEB)
			for (wb = 0; wb < DATA_WIDTH_B; wb = wb + 1)
				if (b_be[DATA_WIDTH_B >= 18 ? wb / 9 : 0]) splitnic_bits[b_first + wb] <= b_wdata[wb];
	end
	always @(posedge clkb or posedge rstb_async) begin
		if (RSTB) begin
			b_word_q <= 36'd0;
		end else if (b_on) begin
			if (WEB) begin
				if (WRITEMODE_B == "WRITETHROUGH") b_word_q <= b_wdata & b_mask;
				else if (WRITEMODE_B == "READBEFOREWRITE") b_word_q <= b_old & b_mask;
			end else begin
				b_word_q <= b_reads_a_write ? 36'bx : b_old & b_mask;
			end
		end
	end

	wire [17:0] doa = DATA_WIDTH_B == 36 ? b_word_q[17:0] : doa_q;
	wire [17:0] dob = DATA_WIDTH_B == 36 ? b_word_q[35:18] : b_word_q[17:0];
	assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
	assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
