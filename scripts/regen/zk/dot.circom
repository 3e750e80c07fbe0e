pragma circom 2.0.0;
// y = sum(w[i] * x[i]) + b over integers: a quantized neuron's accumulation, inputs private.
template Dot(n) {
    signal input x[n];
    signal input w[n];
    signal input b;
    signal output y;
    signal acc[n + 1];
    acc[0] <== b;
    for (var i = 0; i < n; i++) {
        acc[i + 1] <== acc[i] + x[i] * w[i];
    }
    y <== acc[n];
}
component main {public [b]} = Dot(4);
