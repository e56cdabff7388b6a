
q
pPlaceholder*
dtype0*R
nestJRH
fC
k>R<
f7
k2R0
f+
k&R$
f
kR
f
kR
f
k