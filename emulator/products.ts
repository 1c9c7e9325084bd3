// Every product the emulator knows, one line each. Adding a cloud API: its folder under emulator/apis/, a line here.
import type { EmulatedProduct } from './core/api';
import { mongodbProduct } from './apis/mongodb';
import { mqttProduct } from './apis/mqtt';
import { redisProduct } from './apis/redis';

export const PRODUCTS: readonly EmulatedProduct[] = [mqttProduct, mongodbProduct, redisProduct];
